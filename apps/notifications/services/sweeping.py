"""The sweeper: every domain event gets its notifications, every due delivery its attempt.

Run by beat (`notifications.sweep`, every NOTIFICATION_SWEEP_INTERVAL_SECONDS) and safe to
run anywhere at any time: creation is idempotent (the dedup key) and queueing re-checks
each row under its row lock. Work is bounded per run (NOTIFICATION_SWEEP_BATCH_SIZE events,
NOTIFICATION_REQUEUE_BATCH_SIZE deliveries); what is left waits for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.notifications import selectors
from apps.notifications.models import NotificationEvent
from apps.notifications.services.creation import notify_order_event, notify_user_registered
from apps.notifications.services.delivery import requeue_notifications
from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import NOTIFICATION_SWEEP_ACTIONS

logger = get_logger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """Events found without notifications (and handled now), deliveries queued."""

    events_handled: int
    requeued: int


def create_missing_notifications() -> int:
    """Run the notification handler of each domain event of the last
    NOTIFICATION_SWEEP_LOOKBACK_SECONDS, older than NOTIFICATION_SWEEP_GRACE_SECONDS (the
    outbox's turn first), that has no notification: its message was lost or its handler
    failed. Returns how many events were handled."""
    now = timezone.now()
    missing = selectors.unhandled_events(
        since=now - timedelta(seconds=settings.NOTIFICATION_SWEEP_LOOKBACK_SECONDS),
        until=now - timedelta(seconds=settings.NOTIFICATION_SWEEP_GRACE_SECONDS),
        limit=settings.NOTIFICATION_SWEEP_BATCH_SIZE,
    )
    for item in missing:
        if item.event == NotificationEvent.USER_REGISTERED and item.user_id is not None:
            notify_user_registered(user_id=item.user_id)
        elif item.order_id is not None:
            notify_order_event(event=item.event, order_id=item.order_id)
        logger.warning(
            "notification_event_recovered",
            event_name=str(item.event),
            order_id=item.order_id,
            user_id=item.user_id,
        )
    return len(missing)


def sweep_notifications() -> SweepResult:
    """Make the notifications events missed, then queue every due delivery (a retry whose
    wait is over, a queued one that never ran, one whose worker died mid-send)."""
    handled = create_missing_notifications()
    requeued = requeue_notifications(include_failed=False)
    NOTIFICATION_SWEEP_ACTIONS.labels("events_handled").inc(handled)
    NOTIFICATION_SWEEP_ACTIONS.labels("requeued").inc(requeued)
    logger.info("notifications_swept", events_handled=handled, requeued=requeued)
    return SweepResult(events_handled=handled, requeued=requeued)
