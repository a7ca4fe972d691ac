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

Retries wait in the row (`next_attempt_at`), not in the broker: a wait of up to
NOTIFICATION_BROKER_RETRY_MAX_SECONDS is also handed to the broker as a countdown (fast),
a longer one only to the sweeper (`sweep_notifications`), which queues due rows. An
attempt that arrives before `next_attempt_at` (a duplicate message) does nothing. A call
refused by the destination's open circuit breaker never reached it: it is not an
attempt, and waits for the breaker instead. Webhooks retry for WEBHOOK_RETRY_HORIZON_SECONDS
after their first attempt; emails for NOTIFICATION_EMAIL_MAX_ATTEMPTS attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
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
from ecommerce.commands import Progress
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import NOTIFICATIONS
from ecommerce.resilience.exceptions import CircuitOpen, LockNotAcquired
from ecommerce.resilience.locks import distributed_lock
from ecommerce.resilience.retry import RetryPolicy

logger = get_logger(__name__)

S = NotificationStatus
# A queued attempt this early is still taken: a countdown and the clock that set
# next_attempt_at differ by the time between the two.
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery call did: sent, failed, retry (the caller queues it again after
    `retry_in_seconds`), scheduled (waits in the database for the sweeper), busy (another
    worker holds the lock) or skipped (nothing to send now)."""

    outcome: str
    retry_in_seconds: float | None = None


def retry_policy_for(channel: str) -> RetryPolicy:
    """Attempts (the first included) and backoff of a channel.

    Webhooks: WEBHOOK_RETRY_BASE/CAP_SECONDS, WEBHOOK_MAX_ATTEMPTS as a safety cap (the
    horizon, retry_horizon_for, normally ends them first). Email: NOTIFICATION_RETRY_*,
    NOTIFICATION_EMAIL_MAX_ATTEMPTS. Raises ValueError on invalid settings (the start-up
    check reports them first).
    """
    if channel == NotificationChannel.WEBHOOK:
        return RetryPolicy(
            max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
            base_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS,
            cap_seconds=settings.WEBHOOK_RETRY_CAP_SECONDS,
        )
    return RetryPolicy(
        max_attempts=settings.NOTIFICATION_EMAIL_MAX_ATTEMPTS,
        base_seconds=settings.NOTIFICATION_RETRY_BASE_SECONDS,
        cap_seconds=settings.NOTIFICATION_RETRY_CAP_SECONDS,
    )


def retry_horizon_for(channel: str) -> timedelta | None:
    """How long after its first attempt a delivery may still be retried (None: no limit
    in time, only in attempts)."""
    if channel == NotificationChannel.WEBHOOK:
        return timedelta(seconds=settings.WEBHOOK_RETRY_HORIZON_SECONDS)
    return None


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS)


def _is_stale_sending(notification: Notification) -> bool:
    return notification.status == S.SENDING and notification.updated_at < _stale_before()


def _claim(notification_id: int) -> Notification | None:
    """Move a due pending (or abandoned sending) notification to sending, counting the
    attempt.

    None when there is nothing to send now: gone, sent, failed, being sent right now, or
    not due yet (its retry waits in next_attempt_at).
    """
    with transaction.atomic():
        notification = locks.notification_for_update(notification_id)
        if notification is None:
            return None
        if notification.status != S.PENDING and not _is_stale_sending(notification):
            return None
        now = timezone.now()
        if (
            notification.status == S.PENDING
            and notification.next_attempt_at is not None
            and notification.next_attempt_at > now + EARLY_TOLERANCE
        ):
            logger.info(
                "notification_delivery_skipped",
                notification_id=notification.pk,
                reason="not_due",
                next_attempt_at=notification.next_attempt_at.isoformat(),
            )
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
            notification.next_attempt_at = None
            notification.save(
                update_fields=["status", "last_error", "next_attempt_at", "updated_at"]
            )
            return None
        notification.status = S.SENDING
        notification.attempts += 1
        fields = ["status", "attempts", "updated_at"]
        if notification.first_attempt_at is None:
            notification.first_attempt_at = now
            fields.append("first_attempt_at")
        notification.save(update_fields=fields)
    return notification


def _finish(
    notification: Notification,
    *,
    status: str,
    error: str = "",
    next_attempt_at: datetime | None = None,
    counted: bool = True,
) -> bool:
    """Record this attempt's outcome if the row is still this attempt's; True when it was.

    `counted=False` takes the attempt back (the call never left: an open breaker).
    Caller is inside a transaction (and holds the endpoint's lock first, for webhooks:
    endpoint before notification is the one lock order).
    """
    now = timezone.now()
    changes: dict[str, Any] = {
        "status": status,
        "last_error": error[:2000],
        "updated_at": now,
        "next_attempt_at": next_attempt_at,
    }
    if status == S.SENT:
        changes["sent_at"] = now
    if not counted:
        changes["attempts"] = F("attempts") - 1
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


def _conclude(
    notification: Notification,
    *,
    status: str,
    error: str = "",
    next_attempt_at: datetime | None = None,
    counted: bool = True,
) -> None:
    """Record a final or retry outcome; for webhooks, the endpoint's failure streak and the
    owner's notice of a delivery that failed for good."""
    with transaction.atomic():
        endpoint = (
            locks.endpoint_for_update(notification.endpoint_id)
            if notification.endpoint_id
            else None
        )
        if not _finish(
            notification,
            status=status,
            error=error,
            next_attempt_at=next_attempt_at,
            counted=counted,
        ):
            return
        if not counted:
            notification.attempts -= 1
        outcomes: dict[str, str] = {S.SENT: "sent", S.FAILED: "failed"}
        outcome = outcomes.get(status, "retry")
        NOTIFICATIONS.labels(notification.channel, outcome if counted else "deferred").inc()
        if endpoint is None:
            return
        if status == S.SENT:
            record_delivery_success(endpoint)
        elif status == S.FAILED:
            notification.last_error = error
            record_delivery_failure(endpoint, notification)


def _past_horizon(notification: Notification, now: datetime) -> bool:
    horizon = retry_horizon_for(notification.channel)
    first = notification.first_attempt_at
    return horizon is not None and first is not None and now >= first + horizon


def _fail(notification: Notification, error: str, *, counted: bool = True) -> DeliveryResult:
    _conclude(notification, status=S.FAILED, error=error, counted=counted)
    logger.warning(
        "notification_failed",
        notification_id=notification.pk,
        channel=notification.channel,
        attempts=notification.attempts,
        error=error[:200],
    )
    return DeliveryResult("failed")


def _schedule(
    notification: Notification, *, wait_seconds: float, error: str, counted: bool = True
) -> DeliveryResult:
    """Back to pending, due in `wait_seconds` (never past the retry horizon's end)."""
    now = timezone.now()
    horizon = retry_horizon_for(notification.channel)
    if horizon is not None and notification.first_attempt_at is not None:
        left = (notification.first_attempt_at + horizon - now).total_seconds()
        wait_seconds = max(0.0, min(wait_seconds, left))
    due = now + timedelta(seconds=wait_seconds)
    _conclude(notification, status=S.PENDING, error=error, next_attempt_at=due, counted=counted)
    broker = wait_seconds <= settings.NOTIFICATION_BROKER_RETRY_MAX_SECONDS
    logger.info(
        "notification_retry",
        notification_id=notification.pk,
        channel=notification.channel,
        attempts=notification.attempts,
        retry_in_seconds=round(wait_seconds, 3),
        waits_in="broker" if broker else "database",
        error=error[:200],
    )
    if broker:
        return DeliveryResult("retry", retry_in_seconds=wait_seconds)
    return DeliveryResult("scheduled", retry_in_seconds=wait_seconds)


def _retry_or_fail(notification: Notification, exc: Exception) -> DeliveryResult:
    policy = retry_policy_for(notification.channel)
    error = f"attempt {notification.attempts}: {exc}"
    if policy.exhausted(notification.attempts) or _past_horizon(notification, timezone.now()):
        return _fail(notification, error)
    countdown = policy.countdown(notification.attempts - 1)
    hint = getattr(exc, "retry_after_seconds", None)
    if hint:
        countdown = max(countdown, min(float(hint), policy.cap_seconds))
    return _schedule(notification, wait_seconds=countdown, error=error)


def _wait_for_breaker(notification: Notification, exc: CircuitOpen) -> DeliveryResult:
    """The open breaker refused the call, so the destination was never reached: the attempt
    is taken back. The wait is the breaker's own, stretched (with jitter) as the delivery
    ages so a long outage is not polled every few seconds; the horizon still applies."""
    now = timezone.now()
    error = f"not attempted: {exc}"
    if _past_horizon(notification, now):
        return _fail(notification, f"gave up, not attempted: {exc}", counted=False)
    policy = retry_policy_for(notification.channel)
    first = notification.first_attempt_at or now
    waited = (now - first).total_seconds()
    wait = max(exc.retry_after_seconds, random.uniform(0.0, min(policy.cap_seconds, waited / 2)))  # noqa: S311
    return _schedule(notification, wait_seconds=wait, error=error, counted=False)


def _deliver_locked(notification_id: int) -> DeliveryResult:
    notification = _claim(notification_id)
    if notification is None:
        return DeliveryResult("skipped")
    try:
        channels.send(notification)
    except CircuitOpen as exc:
        return _wait_for_breaker(notification, exc)
    except (DeliveryUnavailable, SoftTimeLimitExceeded) as exc:
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
    """Make one delivery attempt of a due pending notification.

    Safe to call any number of times from any number of workers: a sent or failed one is
    skipped, one not due yet is skipped, and one being sent elsewhere gives "busy". A
    transient failure puts it back to pending, due after the policy's backoff: "retry"
    (queue it again after `retry_in_seconds`) or "scheduled" (the sweeper will), until the
    attempts or the horizon are used up ("failed").
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
    """Back to pending and queued; `fresh` also restarts the attempt count and horizon.
    Caller holds the row lock inside a transaction."""
    notification.status = S.PENDING
    fields = ["status", "updated_at"]
    if fresh:
        notification.attempts = 0
        notification.last_error = ""
        notification.sent_at = None
        notification.first_attempt_at = None
        notification.next_attempt_at = None
        fields += ["attempts", "last_error", "sent_at", "first_attempt_at", "next_attempt_at"]
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


def requeue_notifications(
    *, include_failed: bool, since: datetime | None = None, progress: Progress | None = None
) -> int:
    """Queue what is due and not on its way (selectors.notifications_to_requeue: a retry
    whose wait is over, a queued delivery that never ran, a send whose worker died), and
    with `include_failed` the failed ones (their attempts and horizon start over). Returns
    how many were queued (at most NOTIFICATION_REQUEUE_BATCH_SIZE).

    Each row is checked again under its row lock, so two sweeps at once queue it once.
    """
    queryset = selectors.notifications_to_requeue(include_failed=include_failed, since=since)
    candidates = list(
        queryset.values_list("pk", flat=True)[: settings.NOTIFICATION_REQUEUE_BATCH_SIZE]
    )
    queued = 0
    if progress is not None:
        progress.add_total(len(candidates))
    for notification_id in candidates:
        with transaction.atomic():
            notification = (
                selectors.notifications_to_requeue(include_failed=include_failed, since=since)
                .filter(pk=notification_id)
                .select_for_update(of=("self",))
                .first()
            )
            if notification is not None:  # else delivered or picked up meanwhile
                _reset_for_delivery(notification, fresh=notification.status == S.FAILED)
                queued += 1
        if progress is not None:
            progress.advance("queued" if notification is not None else "skipped")
    logger.info("notifications_requeued", queued=queued, include_failed=include_failed)
    return queued
