"""Notification tasks: events in, notifications out (queue `notifications`); one delivery
each (emails on `notifications`, webhooks on `webhooks`); the periodic sweep.

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


def _return_event_task(event: NotificationEvent) -> Any:
    """The handler of one return topic (payload {"order_id", "return_id"}), bound to its event."""

    def notify_return_event_task(order_id: int, return_id: int) -> int:
        return len(services.notify_return_event(event=event, return_id=return_id))

    notify_return_event_task.__name__ = notify_return_event_task.__qualname__ = (
        f"notify_{event.value}_task"
    )
    return shared_task(name=events.notify_task_name(event), **NOTIFY_OPTIONS)(
        notify_return_event_task
    )


RETURN_EVENT_TASKS: dict[NotificationEvent, Any] = {
    event: _return_event_task(event) for event in events.RETURN_TOPIC_EVENTS.values()
}


def _refund_event_task(event: NotificationEvent) -> Any:
    """The handler of one refund topic: the payload's fields become the refund's data."""

    def notify_refund_event_task(order_id: int, **refund: Any) -> int:
        return len(services.notify_refund_event(event=event, order_id=order_id, refund=refund))

    notify_refund_event_task.__name__ = notify_refund_event_task.__qualname__ = (
        f"notify_{event.value}_task"
    )
    return shared_task(name=events.notify_task_name(event), **NOTIFY_OPTIONS)(
        notify_refund_event_task
    )


REFUND_EVENT_TASKS: dict[NotificationEvent, Any] = {
    event: _refund_event_task(event) for event in events.REFUND_TOPIC_EVENTS.values()
}


DELIVER_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "ignore_result": True,
    "max_retries": None,  # the notification's attempts and horizon decide (delivery.py)
    "soft_time_limit": 60,
    "time_limit": 90,
}


def _deliver(task: Any, notification_id: int) -> str:
    """One delivery attempt. A retry due within NOTIFICATION_BROKER_RETRY_MAX_SECONDS comes
    back as a broker countdown; a longer one waits in the database for the sweeper."""
    result = services.deliver_notification(notification_id=notification_id)
    if result.outcome == "retry" and result.retry_in_seconds is not None:
        raise task.retry(countdown=result.retry_in_seconds)
    return result.outcome


@shared_task(name=events.DELIVER_TASK, **DELIVER_OPTIONS)
def deliver_notification_task(self: Any, notification_id: int) -> str:
    """Deliver an email notification (queue `notifications`)."""
    return _deliver(self, notification_id)


@shared_task(name=events.DELIVER_WEBHOOK_TASK, **DELIVER_OPTIONS)
def deliver_webhook_task(self: Any, notification_id: int) -> str:
    """Deliver a webhook (queue `webhooks`, its own worker pool: a receiver that answers
    slowly holds these workers only)."""
    return _deliver(self, notification_id)


@shared_task(
    name=events.SWEEP_TASK, acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180
)
def sweep_notifications_task() -> dict[str, int]:
    """Beat: notifications for events that missed them; queue due and lost deliveries."""
    result = services.sweep_notifications()
    return {"events_handled": result.events_handled, "requeued": result.requeued}
