"""Topic registry, publishing, dispatch and the relay."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class Handler:
    task_name: str
    queue: str | None


_handlers: dict[str, list[Handler]] = {}


def register(topic: str, *, task: str, queue: str | None = None) -> None:
    """Hand every message of `topic` to the Celery task named `task` (as keyword args)."""
    handler = Handler(task_name=task, queue=queue)
    if handler not in _handlers.setdefault(topic, []):
        _handlers[topic].append(handler)


def handlers_for(topic: str) -> list[Handler]:
    return list(_handlers.get(topic, ()))


def publish(topic: str, payload: dict[str, Any]) -> int:
    """Write an outbox row in the current transaction; it is dispatched once committed."""
    from ecommerce.outbox.models import OutboxMessage

    message = OutboxMessage.objects.create(topic=topic, payload=payload)
    # The row is in hand: dispatching it after commit needs no second read.
    transaction.on_commit(lambda: _dispatch([message]))
    return message.pk


def _send(message: Any) -> None:
    from ecommerce.celery import app

    for handler in handlers_for(message.topic):
        task = app.tasks[handler.task_name]
        options: dict[str, Any] = {"headers": {"outbox_message_id": message.pk}}
        if handler.queue:
            options["queue"] = handler.queue
        task.apply_async(kwargs=message.payload, **options)


def _dispatch(messages: Iterable[Any]) -> int:
    from ecommerce.outbox.models import OutboxMessage

    sent = 0
    for message in messages:
        try:
            _send(message)
        except Exception as exc:  # broker down, task failed eagerly: the relay retries
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=message.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000]
            )
            logger.warning(
                "outbox_dispatch_failed",
                message_id=message.pk,
                topic=message.topic,
                error=f"{type(exc).__name__}: {exc}"[:200],
            )
            continue
        OutboxMessage.objects.filter(pk=message.pk, dispatched_at__isnull=True).update(
            dispatched_at=timezone.now(), attempts=message.attempts + 1
        )
        sent += 1
    return sent


def relay_pending(*, batch_size: int | None = None, min_age_seconds: float | None = None) -> int:
    """Re-send messages not yet dispatched; rows being relayed elsewhere are skipped.

    Only messages older than `min_age_seconds` are taken, so the on-commit dispatch of a
    message usually wins and the relay seldom sends a duplicate.
    """
    from ecommerce.outbox.models import OutboxMessage

    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    if min_age_seconds is None:
        min_age_seconds = settings.OUTBOX_RELAY_MIN_AGE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
    with transaction.atomic():
        messages = list(
            OutboxMessage.objects.filter(dispatched_at__isnull=True, created_at__lte=cutoff)
            .order_by("pk")
            .select_for_update(skip_locked=True)[:batch_size]
        )
        sent = _dispatch(messages)
    if messages:
        logger.info("outbox_relayed", taken=len(messages), sent=sent)
    return sent


def backlog() -> tuple[int, Any]:
    """How many messages wait to be dispatched, and when the oldest was written."""
    from django.db.models import Count, Min

    from ecommerce.outbox.models import OutboxMessage

    row = OutboxMessage.objects.filter(dispatched_at__isnull=True).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    return row["count"], row["oldest"]


def pending_count() -> int:
    from ecommerce.outbox.models import OutboxMessage

    return OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
