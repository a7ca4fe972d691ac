"""The migration to rows per handler keeps existing rows safe: what the old rule had
dispatched counts as completed, what it had not is due at once and split by the relay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from ecommerce.outbox.models import OutboxMessage
from ecommerce.outbox.registry import relay_pending
from tests.ecommerce.outbox.conftest import TOPIC

BEFORE = [("outbox", "0001_initial")]
AFTER = [("outbox", "0002_per_handler_rows_and_leases")]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rows_of_the_old_schema_are_completed_or_due(handlers, on_commit, runs):
    handlers("tests.outbox.record", "tests.outbox.also_record")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("outbox", "OutboxMessage")
    written = timezone.now() - timedelta(minutes=5)
    dispatched = old.objects.create(
        topic=TOPIC, payload={"value": 1}, dispatched_at=written, attempts=1
    )
    waiting = old.objects.create(topic=TOPIC, payload={"value": 2}, attempts=2, last_error="x")
    old.objects.filter(pk__in=[dispatched.pk, waiting.pk]).update(created_at=written)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    done = OutboxMessage.objects.get(pk=dispatched.pk)
    assert (done.completed_at, done.lease_until, done.task_name) == (written, written, "")
    due = OutboxMessage.objects.get(pk=waiting.pk)
    assert (due.completed_at, due.lease_until, due.attempts, due.retries) == (None, written, 2, 0)

    with on_commit():
        assert relay_pending() == 2

    assert sorted(runs) == sorted(
        (m.task_name, 2, m.pk, 0) for m in OutboxMessage.objects.exclude(task_name="")
    )
    assert OutboxMessage.objects.filter(completed_at__isnull=True).count() == 0
