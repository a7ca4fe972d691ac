"""Delivering a notification at most once at a time, with retries, resends and requeues.

A delivery runs under a Redis lock per notification (so two workers never call the
destination at once for it) and moves the row's status under its row lock:
pending -> sending (one attempt counted) -> sent, failed, or pending again for a retry.
The lock only keeps concurrent attempts apart; the status is the guarantee, and the
outcome is recorded only by the attempt that claimed the row (a conditional UPDATE on
status and attempt number). A worker that dies mid-send leaves `sending`; once that is
older than NOTIFICATION_LOCK_TTL_SECONDS the row may be claimed again. That is the one
window where a destination can see a notification twice, which is why webhooks carry a
stable `id` for receivers to drop duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.notifications import channels, locks, selectors
from apps.notifications.exceptions import (
    DeliveryRefused,
    DeliveryUnavailable,
    NotificationBusy,
    NotificationNotFound,
)
from apps.notifications.models import Notification, NotificationChannel, NotificationStatus
from apps.notifications.services.creation import queue_delivery
from apps.notifications.services.endpoints import record_delivery_failure, record_delivery_success
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import NOTIFICATIONS
from ecommerce.resilience.exceptions import CircuitOpen, LockNotAcquired
from ecommerce.resilience.locks import distributed_lock
from ecommerce.resilience.retry import RetryPolicy

logger = get_logger(__name__)

S = NotificationStatus


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery call did: sent, failed, retry (after `retry_in_seconds`),
    busy (another worker holds the lock) or skipped (nothing to send)."""

    outcome: str
    retry_in_seconds: float | None = None


def retry_policy_for(channel: str) -> RetryPolicy:
    """Attempts per channel (the first included) and the shared backoff settings.

    Raises ValueError on invalid settings (the start-up check reports them first).
    """
    max_attempts = (
        settings.WEBHOOK_MAX_ATTEMPTS
        if channel == NotificationChannel.WEBHOOK
        else settings.NOTIFICATION_EMAIL_MAX_ATTEMPTS
    )
    return RetryPolicy(
        max_attempts=max_attempts,
        base_seconds=settings.NOTIFICATION_RETRY_BASE_SECONDS,
        cap_seconds=settings.NOTIFICATION_RETRY_CAP_SECONDS,
    )


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS)


def _is_stale_sending(notification: Notification) -> bool:
    return notification.status == S.SENDING and notification.updated_at < _stale_before()


def _claim(notification_id: int) -> Notification | None:
    """Move a pending (or abandoned sending) notification to sending, counting the attempt.

    None when there is nothing to send: gone, sent, failed, or being sent right now.
    """
    with transaction.atomic():
        notification = locks.notification_for_update(notification_id)
        if notification is None:
            return None
        if notification.status != S.PENDING and not _is_stale_sending(notification):
            return None
        if notification.status == S.SENDING:
            logger.warning(
                "notification_reclaimed", notification_id=notification.pk, reason="stale_sending"
            )
        endpoint = notification.endpoint if notification.endpoint_id else None
        if notification.channel == NotificationChannel.WEBHOOK and (
            endpoint is None or not endpoint.active
        ):
            notification.status = S.FAILED
            notification.last_error = "The webhook endpoint is disabled."
            notification.save(update_fields=["status", "last_error", "updated_at"])
            return None
        notification.status = S.SENDING
        notification.attempts += 1
        notification.save(update_fields=["status", "attempts", "updated_at"])
    return notification


def _finish(notification: Notification, *, status: str, error: str = "") -> bool:
    """Record this attempt's outcome if the row is still this attempt's; True when it was.

    Caller is inside a transaction (and holds the endpoint's lock first, for webhooks:
    endpoint before notification is the one lock order).
    """
    now = timezone.now()
    changes: dict[str, Any] = {"status": status, "last_error": error[:2000], "updated_at": now}
    if status == S.SENT:
        changes["sent_at"] = now
    updated = Notification.objects.filter(
        pk=notification.pk, status=S.SENDING, attempts=notification.attempts
    ).update(**changes)
    if not updated:
        logger.warning(
            "notification_outcome_superseded",
            notification_id=notification.pk,
            attempt=notification.attempts,
            outcome=status,
        )
    return bool(updated)


def _conclude(notification: Notification, *, status: str, error: str = "") -> None:
    """Record a final or retry outcome, and for webhooks the endpoint's failure streak."""
    with transaction.atomic():
        endpoint = (
            locks.endpoint_for_update(notification.endpoint_id)
            if notification.endpoint_id
            else None
        )
        if not _finish(notification, status=status, error=error):
            return
        outcome = {S.SENT: "sent", S.FAILED: "failed"}.get(status, "retry")
        NOTIFICATIONS.labels(notification.channel, outcome).inc()
        if endpoint is None:
            return
        if status == S.SENT:
            record_delivery_success(endpoint)
        elif status == S.FAILED:
            record_delivery_failure(endpoint)


def _retry_or_fail(notification: Notification, exc: Exception) -> DeliveryResult:
    policy = retry_policy_for(notification.channel)
    error = f"attempt {notification.attempts}: {exc}"
    if policy.exhausted(notification.attempts):
        _conclude(notification, status=S.FAILED, error=error)
        logger.warning(
            "notification_failed",
            notification_id=notification.pk,
            channel=notification.channel,
            attempts=notification.attempts,
            error=str(exc)[:200],
        )
        return DeliveryResult("failed")
    _conclude(notification, status=S.PENDING, error=error)
    countdown = policy.countdown(notification.attempts - 1)
    hint = getattr(exc, "retry_after_seconds", None)
    if hint:
        countdown = max(countdown, min(float(hint), policy.cap_seconds))
    logger.info(
        "notification_retry",
        notification_id=notification.pk,
        channel=notification.channel,
        attempts=notification.attempts,
        retry_in_seconds=round(countdown, 3),
        error=str(exc)[:200],
    )
    return DeliveryResult("retry", retry_in_seconds=countdown)


def _deliver_locked(notification_id: int) -> DeliveryResult:
    notification = _claim(notification_id)
    if notification is None:
        return DeliveryResult("skipped")
    try:
        channels.send(notification)
    except (DeliveryUnavailable, CircuitOpen, SoftTimeLimitExceeded) as exc:
        return _retry_or_fail(notification, exc)
    except DeliveryRefused as exc:
        _conclude(notification, status=S.FAILED, error=f"attempt {notification.attempts}: {exc}")
        logger.warning(
            "notification_refused",
            notification_id=notification.pk,
            channel=notification.channel,
            reason=exc.reason,
        )
        return DeliveryResult("failed")
    except Exception as exc:
        # A bug, not the destination: fail the row (retry_notifications --failed resends it
        # once fixed) rather than leave it in `sending`.
        logger.exception("notification_error", notification_id=notification.pk)
        _conclude(notification, status=S.FAILED, error=f"{type(exc).__name__}: {exc}")
        return DeliveryResult("failed")
    _conclude(notification, status=S.SENT)
    logger.info(
        "notification_sent",
        notification_id=notification.pk,
        channel=notification.channel,
        event_name=notification.event,
        attempts=notification.attempts,
    )
    return DeliveryResult("sent")


def deliver_notification(*, notification_id: int) -> DeliveryResult:
    """Make one delivery attempt of a pending notification.

    Safe to call any number of times from any number of workers: a sent or failed one is
    skipped, and one being sent elsewhere gives "busy". A transient failure puts it back
    to pending and returns "retry" with the backoff to wait, until the channel's attempts
    are used up ("failed").
    """
    try:
        with distributed_lock(
            f"notification:{notification_id}:deliver",
            ttl_seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS,
        ):
            return _deliver_locked(notification_id)
    except LockNotAcquired:
        logger.info("notification_delivery_skipped", notification_id=notification_id, reason="busy")
        return DeliveryResult("busy")


def _reset_for_delivery(notification: Notification, *, fresh: bool) -> None:
    """Back to pending and queued; `fresh` also restarts the attempt count. Caller holds
    the row lock inside a transaction."""
    notification.status = S.PENDING
    fields = ["status", "updated_at"]
    if fresh:
        notification.attempts = 0
        notification.last_error = ""
        notification.sent_at = None
        fields += ["attempts", "last_error", "sent_at"]
    notification.save(update_fields=fields)
    queue_delivery(notification)


def resend_notification(*, notification_id: int, by: Any) -> Notification:
    """Deliver a notification again whatever became of it (a staff action): a sent one is
    sent a second time, on purpose.

    Raises NotificationNotFound and NotificationBusy (it is being sent right now).
    """
    with transaction.atomic():
        notification = locks.notification_for_update(notification_id)
        if notification is None:
            raise NotificationNotFound(f"No notification {notification_id}.")
        if notification.status == S.SENDING and not _is_stale_sending(notification):
            raise NotificationBusy(notification_id=notification_id)
        _reset_for_delivery(notification, fresh=True)
    logger.info("notification_resend", notification_id=notification_id, by=getattr(by, "pk", None))
    return notification


def requeue_notifications(*, include_failed: bool, since: datetime | None = None) -> int:
    """Queue again what may have been lost: pending or sending rows quiet for the lock TTL,
    and with `include_failed` the failed ones (their attempts start over). Returns how
    many were queued (at most NOTIFICATION_REQUEUE_BATCH_SIZE)."""
    queryset = selectors.notifications_to_requeue(include_failed=include_failed, since=since)
    candidates = list(
        queryset.values_list("pk", flat=True)[: settings.NOTIFICATION_REQUEUE_BATCH_SIZE]
    )
    queued = 0
    for notification_id in candidates:
        with transaction.atomic():
            notification = locks.notification_for_update(notification_id)
            if notification is None:
                continue
            failed = include_failed and notification.status == S.FAILED
            stuck = notification.updated_at < _stale_before() and notification.status in (
                S.PENDING,
                S.SENDING,
            )
            if not (failed or stuck):
                continue  # delivered or picked up meanwhile
            _reset_for_delivery(notification, fresh=failed)
            queued += 1
    logger.info("notifications_requeued", queued=queued, include_failed=include_failed)
    return queued
