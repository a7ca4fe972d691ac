"""The relay: re-sends rows not completed whose lease ran out, once each, even when two
relays run at once (raced for real against a real Redis broker)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils import timezone

from ecommerce.outbox.models import OutboxMessage
from ecommerce.outbox.registry import MESSAGE_ID_HEADER, lease_seconds, relay_pending
from tests.ecommerce.outbox.conftest import TOPIC
from tests.integration.helpers import publishing_to
from tests.servers import redis_server

RECORD = "tests.outbox.record"
ALSO = "tests.outbox.also_record"


def row(*, task: str = RECORD, due_in_seconds: float = -1.0, **fields: Any) -> OutboxMessage:
    message: OutboxMessage = OutboxMessage.objects.create(
        topic=TOPIC,
        task_name=task,
        payload={"value": fields.pop("value", 1)},
        lease_until=timezone.now() + timedelta(seconds=due_in_seconds),
        attempts=fields.pop("attempts", 1),
        **fields,
    )
    return message


@pytest.mark.django_db
def test_only_rows_not_completed_whose_lease_ran_out_are_sent(handlers, on_commit, runs):
    handlers(RECORD)
    due = row(value=1)
    leased = row(value=2, due_in_seconds=60)
    done = row(value=3, completed_at=timezone.now())

    with on_commit():
        assert relay_pending() == 1

    assert runs == [(RECORD, 1, due.pk, 0)]
    due.refresh_from_db()
    assert (due.attempts, due.completed_at is not None) == (2, True)
    assert OutboxMessage.objects.get(pk=leased.pk).completed_at is None
    assert OutboxMessage.objects.get(pk=done.pk).attempts == 1


@pytest.mark.django_db
def test_a_relayed_row_gets_a_lease_that_doubles_with_each_hand_off(handlers, settings):
    settings.OUTBOX_LEASE_SECONDS = 100
    settings.OUTBOX_LEASE_MAX_SECONDS = 350
    assert [lease_seconds(n) for n in range(1, 6)] == [100, 200, 350, 350, 350]
    handlers(RECORD)
    message = row(attempts=2)
    # Sent, not run: the after-commit runs never happen inside this test's transaction.
    assert relay_pending() == 1

    message.refresh_from_db()
    assert message.attempts == 3
    lease = (message.lease_until - timezone.now()).total_seconds()
    assert 349 < lease <= 350


@pytest.mark.django_db
def test_a_row_from_before_rows_per_handler_is_split_into_one_per_handler(
    handlers, on_commit, runs
):
    handlers(RECORD, ALSO)
    legacy = row(task="", value=4, attempts=3)

    with on_commit():
        assert relay_pending() == 2

    legacy.refresh_from_db()
    assert legacy.completed_at is not None
    split = OutboxMessage.objects.exclude(pk=legacy.pk).order_by("pk")
    assert [(m.task_name, m.payload, m.attempts) for m in split] == [
        (RECORD, {"value": 4}, 4),
        (ALSO, {"value": 4}, 4),
    ]
    assert [m.completed_at is not None for m in split] == [True, True]
    assert sorted(runs) == sorted((m.task_name, 4, m.pk, 0) for m in split)


def broker_messages(url: str, queue: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_send_each_message_exactly_once(handlers):
    handlers(RECORD, queue="outbox-race")
    total = 120
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                topic=TOPIC,
                task_name=RECORD,
                payload={"value": n},
                lease_until=timezone.now() - timedelta(seconds=1),
                attempts=1,
            )
            for n in range(total)
        ]
    )
    start = threading.Barrier(2)
    sent: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def relay(index: int) -> None:
        try:
            start.wait(timeout=10)
            # Small batches, so the two relays interleave for many rounds.
            while count := relay_pending(batch_size=7):
                sent[index].append(count)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    with redis_server() as broker, publishing_to(f"redis://127.0.0.1:{broker.port}/0"):
        threads = [threading.Thread(target=relay, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        messages = broker_messages(f"redis://127.0.0.1:{broker.port}/0", "outbox-race")

    assert errors == []
    print(f"relay rounds: {len(sent[0])} and {len(sent[1])}, sent {sum(sent[0])} + {sum(sent[1])}")
    assert sum(sent[0]) + sum(sent[1]) == total
    ids = Counter(message["headers"][MESSAGE_ID_HEADER] for message in messages)
    assert len(messages) == total
    assert sorted(ids) == sorted(OutboxMessage.objects.values_list("pk", flat=True))
    assert set(ids.values()) == {1}
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {2}
