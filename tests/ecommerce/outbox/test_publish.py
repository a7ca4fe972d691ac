"""Publishing: one row per handler in one INSERT, handed to Celery after commit, completed
only by a task that finished (eager here: the pytest settings run Celery in-process)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ecommerce.celery import app
from ecommerce.outbox import publish
from ecommerce.outbox.models import OutboxMessage
from ecommerce.outbox.registry import relay_pending
from ecommerce.tasks import Task
from tests.ecommerce.outbox.conftest import TOPIC

pytestmark = pytest.mark.django_db

RECORD = "tests.outbox.record"
ALSO = "tests.outbox.also_record"
FAIL_FIRST = "tests.outbox.fail_first"
DB_DOWN_FIRST = "tests.outbox.database_down_first"


def rows() -> list[tuple[str, int, int, bool]]:
    """(task, attempts, retries, completed) per row, in publish order."""
    return [
        (m.task_name, m.attempts, m.retries, m.completed_at is not None)
        for m in OutboxMessage.objects.order_by("pk")
    ]


def test_every_task_of_the_project_is_built_on_the_base_task():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"payments.charge_payment", "notifications.deliver", "outbox.relay"} <= set(ours)
    assert [name for name, task in ours.items() if not isinstance(task, Task)] == []


def test_publish_writes_one_row_per_handler_in_one_insert(handlers):
    handlers(RECORD, ALSO)

    with CaptureQueriesContext(connection) as queries:
        ids = publish(TOPIC, {"value": 7})

    assert len(queries) == 1
    assert queries[0]["sql"].startswith('INSERT INTO "outbox_outboxmessage"')
    messages = list(OutboxMessage.objects.order_by("pk"))
    assert [m.pk for m in messages] == ids
    assert rows() == [(RECORD, 1, 0, False), (ALSO, 1, 0, False)]
    for message in messages:
        assert (message.topic, message.payload, message.last_error) == (TOPIC, {"value": 7}, "")
        lease = message.lease_until - message.created_at
        assert timedelta(seconds=settings.OUTBOX_LEASE_SECONDS - 1) < lease
        assert lease <= timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def test_a_topic_nobody_handles_writes_nothing(handlers):
    assert publish(TOPIC, {"value": 1}) == []
    assert OutboxMessage.objects.count() == 0


def test_after_commit_each_handler_runs_with_its_row_id_and_completes_it(handlers, on_commit, runs):
    handlers(RECORD, ALSO)

    with on_commit():
        first, second = publish(TOPIC, {"value": 7})
        assert runs == []  # nothing leaves before the commit

    assert runs == [(RECORD, 7, first, 0), (ALSO, 7, second, 0)]
    assert rows() == [(RECORD, 1, 0, True), (ALSO, 1, 0, True)]
    assert relay_pending(min_age_seconds=0) == 0


def test_a_handler_that_fails_leaves_its_row_due_and_the_relay_completes_it(
    handlers, on_commit, runs
):
    from tests.ecommerce.outbox import tasks

    handlers(FAIL_FIRST, RECORD)
    tasks.failures_left[FAIL_FIRST] = 1

    with on_commit():
        failing, fine = publish(TOPIC, {"value": 3})

    # The failure stays with its own row; the other handler still ran.
    assert runs == [(FAIL_FIRST, 3, failing, 0), (RECORD, 3, fine, 0)]
    assert rows() == [(FAIL_FIRST, 1, 0, False), (RECORD, 1, 0, True)]
    message = OutboxMessage.objects.get(pk=failing)
    assert message.last_error == "ValueError: boom"
    assert message.lease_until <= timezone.now()

    with on_commit():
        assert relay_pending() == 1

    assert runs[-1] == (FAIL_FIRST, 3, failing, 0)
    assert rows() == [(FAIL_FIRST, 2, 0, True), (RECORD, 1, 0, True)]


def test_a_database_error_in_an_eager_run_is_left_to_the_relay_not_retried_in_process(
    handlers, on_commit, runs
):
    from tests.ecommerce.outbox import tasks

    handlers(DB_DOWN_FIRST, RECORD)
    tasks.failures_left[DB_DOWN_FIRST] = 1

    with on_commit():
        failing, after = publish(TOPIC, {"value": 5})

    # One run, no in-process retry; an infrastructure error stops the hand-off, so the
    # next handler's row waits for the relay too.
    assert runs == [(DB_DOWN_FIRST, 5, failing, 0)]
    assert rows() == [(DB_DOWN_FIRST, 1, 0, False), (RECORD, 1, 0, False)]
    due = OutboxMessage.objects.filter(lease_until__lte=timezone.now())
    assert sorted(due.values_list("pk", flat=True)) == [failing, after]
    assert set(due.values_list("last_error", flat=True)) == {
        "OperationalError: server closed the connection unexpectedly"
    }

    with on_commit():
        assert relay_pending() == 2

    assert runs[1:] == [(DB_DOWN_FIRST, 5, failing, 0), (RECORD, 5, after, 0)]
    assert rows() == [(DB_DOWN_FIRST, 2, 0, True), (RECORD, 2, 0, True)]


def test_an_eager_retry_raised_to_the_hand_off_is_left_to_the_relay_with_its_count(
    handlers, on_commit, runs
):
    handlers("tests.outbox.retry_once")

    with on_commit():
        (message_id,) = publish(TOPIC, {"value": 9})

    # task_eager_propagates (the project's eager default) raises the Retry to the hand-off:
    # the row holds it, due after the task's countdown (5 s), with the retry counted.
    message = OutboxMessage.objects.get(pk=message_id)
    assert (message.completed_at, message.retries, message.attempts) == (None, 1, 1)
    assert message.last_error == ""
    due_in = (message.lease_until - timezone.now()).total_seconds()
    assert 4 < due_in <= 5
    assert relay_pending() == 0

    OutboxMessage.objects.filter(pk=message_id).update(lease_until=timezone.now())
    with on_commit():
        assert relay_pending() == 1

    # Re-sent with its retry count, so the task's own policy goes on counting.
    assert runs == [
        ("tests.outbox.retry_once", 9, message_id, 0),
        ("tests.outbox.retry_once", 9, message_id, 1),
    ]
    message.refresh_from_db()
    assert (message.completed_at is not None, message.retries, message.attempts) == (True, 1, 2)


def test_an_eager_retry_replayed_at_once_keeps_its_row_id_and_completes_it(
    handlers, on_commit, runs, monkeypatch
):
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    handlers("tests.outbox.retry_once")

    with on_commit():
        (message_id,) = publish(TOPIC, {"value": 9})

    # Celery's signature_from_request carried the header into the replay.
    assert runs == [
        ("tests.outbox.retry_once", 9, message_id, 0),
        ("tests.outbox.retry_once", 9, message_id, 1),
    ]
    assert OutboxMessage.objects.get(pk=message_id).completed_at is not None


def test_a_task_run_outside_the_outbox_completes_nothing(handlers, on_commit, runs):
    handlers(RECORD)
    with on_commit():
        (message_id,) = publish(TOPIC, {"value": 1})
    OutboxMessage.objects.filter(pk=message_id).update(completed_at=None)

    app.tasks[RECORD].apply(kwargs={"value": 2})

    assert runs[-1] == (RECORD, 2, None, 0)
    assert OutboxMessage.objects.get(pk=message_id).completed_at is None
