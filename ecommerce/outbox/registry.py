"""Topic registry, publishing, hand-off to Celery, completion and the relay.

Delivery is at-least-once and counts as done only when the handler task has finished:
`publish` writes one row per handler of the topic (one bulk INSERT) with a lease; the row
is handed to the broker after commit; the task's success marks it completed (one UPDATE,
`ecommerce.tasks.Task`); the relay re-sends every row whose lease ran out before it was
completed: the broker lost it, the worker died with it, the task failed. Handlers are
idempotent by effect, so a second delivery changes nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery.exceptions import Retry
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from ecommerce.observability.logging import get_logger
from ecommerce.resilience.retry import TRANSIENT_INFRASTRUCTURE_ERRORS

if TYPE_CHECKING:
    from ecommerce.outbox.models import OutboxMessage

logger = get_logger(__name__)

# The Celery header that names the outbox row a task message delivers.
MESSAGE_ID_HEADER = "outbox_message_id"
# A lease doubles with every hand-off after the first, up to OUTBOX_LEASE_MAX_SECONDS: a
# message lost once comes back after one lease; one whose task keeps failing is re-sent
# less and less often instead of every few minutes forever.
_MAX_LEASE_DOUBLINGS = 16


@dataclass(frozen=True)
class Handler:
    task_name: str
    queue: str | None


_handlers: dict[str, list[Handler]] = {}
# time.monotonic() until which this process hands nothing to the broker after it failed.
_hand_off_paused_until = 0.0


def register(topic: str, *, task: str, queue: str | None = None) -> None:
    """Hand every message of `topic` to the Celery task named `task` (as keyword args)."""
    handler = Handler(task_name=task, queue=queue)
    if handler not in _handlers.setdefault(topic, []):
        _handlers[topic].append(handler)


def handlers_for(topic: str) -> list[Handler]:
    return list(_handlers.get(topic, ()))


def _queue_for(topic: str, task_name: str) -> str | None:
    for handler in _handlers.get(topic, ()):
        if handler.task_name == task_name:
            return handler.queue
    return None  # no longer registered for this topic: Celery's routes decide


def lease_seconds(attempts: int) -> float:
    """How long a row handed over for the `attempts`-th time waits before it is re-sent."""
    doublings = min(max(attempts - 1, 0), _MAX_LEASE_DOUBLINGS)
    return float(
        min(settings.OUTBOX_LEASE_SECONDS * 2**doublings, settings.OUTBOX_LEASE_MAX_SECONDS)
    )


def publish(topic: str, payload: dict[str, Any]) -> list[int]:
    """Write one outbox row per handler of `topic` in the current transaction.

    The rows are handed to Celery once the transaction commits; until their tasks have
    finished, the relay re-sends them when their lease runs out. A topic nobody handles
    writes nothing. Returns the rows' ids.
    """
    from ecommerce.outbox.models import OutboxMessage

    messages = OutboxMessage.objects.bulk_create(prepare(topic, payload))
    hand_off_on_commit(messages)
    return [message.pk for message in messages]


def prepare(topic: str, payload: dict[str, Any], *, ids: Sequence[int] = ()) -> list[OutboxMessage]:
    """The unsaved rows `publish` would write for `topic` (one per handler, none when
    nobody handles it), for a caller that writes them in a statement of its own and then
    calls `hand_off_on_commit`. `ids` numbers them (from the table's sequence)."""
    from ecommerce.outbox.models import OutboxMessage

    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds(1))
    messages = [
        OutboxMessage(
            topic=topic,
            task_name=handler.task_name,
            payload=payload,
            created_at=now,
            lease_until=lease_until,
            attempts=1,
        )
        for handler in handlers_for(topic)
    ]
    for message, pk in zip(messages, ids, strict=False):
        message.pk = pk
    return messages


def hand_off_on_commit(messages: Sequence[OutboxMessage]) -> None:
    """Hand the written rows to Celery once the current transaction commits.

    The rows are in hand: handing them over needs no second read, and no write either
    when it works (their lease is already set).
    """
    if messages:
        transaction.on_commit(lambda: _hand_off(messages))


def _send(message: OutboxMessage, producer: Any = None) -> None:
    """Publish the row's task once, with `producer` when given; no publish retries: the
    relay is the retry."""
    from ecommerce.celery import app

    options: dict[str, Any] = {
        "headers": {MESSAGE_ID_HEADER: message.pk},
        "retry": False,
        "producer": producer,
        # What the worker logs of the call: the payload is a few ids, so Celery's safe
        # repr of it (a tenth of the CPU a publish costs) is not needed.
        "argsrepr": "()",
        "kwargsrepr": repr(message.payload)[:1024],
    }
    queue = _queue_for(message.topic, message.task_name)
    if queue:
        options["queue"] = queue
    if message.retries:
        options["retries"] = message.retries
    app.tasks[message.task_name].apply_async(kwargs=message.payload, **options)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def _hand_off(messages: Sequence[OutboxMessage]) -> int:
    """The on-commit hand-off: send each row; a row that could not be sent is due at once.

    The rows go out through one producer (one pool checkout for all), unless tasks run
    eagerly. After a broker
    error the remaining rows are not tried, and for OUTBOX_HANDOFF_PAUSE_SECONDS this
    process tries none at all (each try would wait out the broker's socket timeout again,
    request after request): those rows become due for the relay's next run. Never raises a
    broker or task error: the business transaction has committed, the rows are the
    guarantee.
    """
    from ecommerce.celery import app

    if time.monotonic() < _hand_off_paused_until:
        _leave_for_relay(messages, error="hand-off paused: the broker failed moments ago")
        return 0
    sent = 0
    index = 0
    # An eager run publishes nothing, and its tasks hand off rows of their own, inline:
    # holding a producer across them would take one per level from a bounded pool, and
    # threads doing so at once would wait on each other for good.
    eager = app.conf.task_always_eager
    try:
        with contextlib.nullcontext() if eager else app.producer_or_acquire() as producer:
            for index, message in enumerate(messages):
                sent += _send_one(message, producer, remaining=messages[index:])
            index = len(messages)
    except _BrokerDown:
        pass
    except Exception as exc:  # taking the producer, or giving it back
        if index < len(messages):
            _failed(messages[index], messages[index:], exc, broker_down=True)
    return sent


class _BrokerDown(Exception):
    """The broker failed: the rows not sent yet were left for the relay."""


def _send_one(message: OutboxMessage, producer: Any, *, remaining: Sequence[OutboxMessage]) -> int:
    """Send one row of a hand-off: 1 when sent. A row whose task failed eagerly is left
    for the relay (0); a broker error leaves `remaining` (this row and those after it)
    for the relay and raises _BrokerDown."""
    try:
        _send(message, producer)
    except Retry:
        return 0  # an eager run asked for a retry: it recorded when and how often on the row
    except Exception as exc:  # broker down, or a task that failed eagerly
        broker_down = isinstance(exc, TRANSIENT_INFRASTRUCTURE_ERRORS)
        _failed(message, remaining if broker_down else [message], exc, broker_down=broker_down)
        if broker_down:
            raise _BrokerDown from exc
        return 0
    return 1


def _failed(
    message: OutboxMessage,
    failed: Sequence[OutboxMessage],
    exc: BaseException,
    *,
    broker_down: bool,
) -> None:
    global _hand_off_paused_until
    logger.warning(
        "outbox_dispatch_failed",
        message_id=message.pk,
        topic=message.topic,
        task=message.task_name,
        left_for_relay=len(failed),
        error=_describe(exc)[:200],
    )
    _leave_for_relay(failed, error=_describe(exc))
    if broker_down and not settings.CELERY_TASK_ALWAYS_EAGER:
        _hand_off_paused_until = time.monotonic() + settings.OUTBOX_HANDOFF_PAUSE_SECONDS


def _leave_for_relay(messages: Sequence[OutboxMessage], *, error: str) -> None:
    """Make rows due for the relay's next run (the order is safe: they are committed)."""
    from ecommerce.outbox.models import OutboxMessage

    try:
        OutboxMessage.objects.filter(
            pk__in=[m.pk for m in messages], completed_at__isnull=True
        ).update(lease_until=timezone.now(), last_error=error)
    except TRANSIENT_INFRASTRUCTURE_ERRORS as db_exc:
        # The database went too: the rows come back when the lease set at publish ends.
        logger.warning("outbox_dispatch_unrecorded", error=_describe(db_exc)[:200])


def resume_hand_off() -> None:
    """Hand rows to the broker again at once (tests; an operator never needs it)."""
    global _hand_off_paused_until
    _hand_off_paused_until = 0.0


def _split_legacy_rows(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    """Rows written before rows were per handler: one new row per handler, the old one done.

    Caller holds the rows' locks, inside a transaction.
    """
    from ecommerce.outbox.models import OutboxMessage

    legacy = [m for m in messages if not m.task_name]
    if not legacy:
        return messages
    now = timezone.now()
    split = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                topic=old.topic,
                task_name=handler.task_name,
                payload=old.payload,
                lease_until=now,
                attempts=old.attempts,
            )
            for old in legacy
            for handler in handlers_for(old.topic)
        ]
    )
    OutboxMessage.objects.filter(pk__in=[m.pk for m in legacy]).update(completed_at=now)
    return [m for m in messages if m.task_name] + split


def _next_lease(message: OutboxMessage) -> datetime:
    return timezone.now() + timedelta(seconds=lease_seconds(message.attempts + 1))


def make_all_due() -> int:
    """End the lease of every row not completed, so the next relay rounds send them all."""
    from ecommerce.outbox.models import OutboxMessage

    return OutboxMessage.objects.filter(completed_at__isnull=True).update(
        lease_until=timezone.now()
    )


def relay_pending(*, batch_size: int | None = None, min_age_seconds: float | None = None) -> int:
    """Re-send rows not completed whose lease has run out; returns how many were sent.

    The rows are taken with SELECT ... FOR UPDATE SKIP LOCKED and get their next lease in
    the same transaction, so relays running at once never send the same row twice. With
    `min_age_seconds`, rows not completed that are at least that old are taken even if
    their lease still runs. A broker error ends the round: the rest waits for the next.
    """
    from ecommerce.outbox.models import OutboxMessage

    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    now = timezone.now()
    due = Q(lease_until__lte=now)
    if min_age_seconds is not None:
        due |= Q(created_at__lte=now - timedelta(seconds=min_age_seconds))
    sent = 0
    with transaction.atomic():
        taken = list(
            OutboxMessage.objects.filter(due, completed_at__isnull=True)
            .order_by("lease_until")
            .select_for_update(skip_locked=True)[:batch_size]
        )
        for message in _split_legacy_rows(taken):
            try:
                _send(message)
            except Retry:
                # An eager run asked for a retry: it recorded when and how often on the row.
                OutboxMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
                continue
            except Exception as exc:
                broker_down = isinstance(exc, TRANSIENT_INFRASTRUCTURE_ERRORS)
                logger.warning(
                    "outbox_relay_failed",
                    message_id=message.pk,
                    topic=message.topic,
                    task=message.task_name,
                    error=_describe(exc)[:200],
                )
                # Not sent: due again next round. Sent and failed at once (an eager run):
                # like any failed run, back when its lease runs out.
                OutboxMessage.objects.filter(pk=message.pk).update(
                    attempts=F("attempts") + 1,
                    last_error=_describe(exc),
                    lease_until=now if broker_down else _next_lease(message),
                )
                if broker_down:
                    break
                continue
            sent += 1
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=F("attempts") + 1, lease_until=_next_lease(message)
            )
    if taken:
        logger.info("outbox_relayed", taken=len(taken), sent=sent)
    return sent


def mark_completed(message_id: int) -> bool:
    """Record that the row's task finished successfully; False when it already was."""
    from ecommerce.outbox.models import OutboxMessage

    return bool(
        OutboxMessage.objects.filter(pk=message_id, completed_at__isnull=True).update(
            completed_at=timezone.now()
        )
    )


def extend_lease(message_id: int, *, until: datetime, retries: int, error: str = "") -> bool:
    """Keep the relay off a row whose task is retrying (or deferred) until `until`."""
    from ecommerce.outbox.models import OutboxMessage

    return bool(
        OutboxMessage.objects.filter(pk=message_id, completed_at__isnull=True).update(
            lease_until=until, retries=retries, last_error=error[:1000]
        )
    )


def record_failure(message_id: int, *, error: str) -> None:
    """Note why the row's task failed; the relay re-sends it when its lease runs out."""
    from ecommerce.outbox.models import OutboxMessage

    OutboxMessage.objects.filter(pk=message_id, completed_at__isnull=True).update(
        last_error=error[:1000]
    )


def backlog() -> tuple[int, Any]:
    """How many rows are not completed yet, and when the oldest of them was written."""
    from ecommerce.outbox.models import OutboxMessage

    row = OutboxMessage.objects.filter(completed_at__isnull=True).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    return row["count"], row["oldest"]


def pending_count() -> int:
    from ecommerce.outbox.models import OutboxMessage

    return OutboxMessage.objects.filter(completed_at__isnull=True).count()
