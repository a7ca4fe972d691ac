"""Notification tasks (queue `notifications`): events in, notifications out; one delivery each.

Every task is `acks_late`: a worker that dies mid-task leaves the message to be run again,
which is safe because creation is idempotent (the dedup key) and delivery skips what is
sent or being sent.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.notifications import events, services
from apps.notifications.models import NotificationEvent

NOTIFY_OPTIONS: dict[str, Any] = {"acks_late": True, "ignore_result": True, "soft_time_limit": 60}


@shared_task(name=events.notify_task_name(NotificationEvent.USER_REGISTERED), **NOTIFY_OPTIONS)
def notify_user_registered_task(user_id: int) -> int:
    return len(services.notify_user_registered(user_id=user_id))


def _order_event_task(event: NotificationEvent) -> Any:
    """The handler of one order topic: the outbox passes only the payload, so the event
    is bound here, one task per topic."""

    def notify_order_event_task(order_id: int) -> int:
        return len(services.notify_order_event(event=event, order_id=order_id))

    notify_order_event_task.__name__ = notify_order_event_task.__qualname__ = (
        f"notify_{event.value}_task"
    )
    return shared_task(name=events.notify_task_name(event), **NOTIFY_OPTIONS)(
        notify_order_event_task
    )


ORDER_EVENT_TASKS: dict[NotificationEvent, Any] = {
    event: _order_event_task(event) for event in events.ORDER_TOPIC_EVENTS.values()
}


@shared_task(
    bind=True,
    name=events.DELIVER_TASK,
    acks_late=True,
    ignore_result=True,
    max_retries=None,  # the notification's attempts decide (retry_policy_for)
    soft_time_limit=60,
    time_limit=90,
)
def deliver_notification_task(self: Any, notification_id: int) -> str:
    """One delivery attempt; a transient failure comes back after the policy's backoff."""
    result = services.deliver_notification(notification_id=notification_id)
    if result.retry_in_seconds is not None:
        raise self.retry(countdown=result.retry_in_seconds)
    return result.outcome
