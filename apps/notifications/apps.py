"""The notifications app: registers its outbox handlers and settings checks at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.core import checks

        from apps.notifications import events, tasks  # noqa: F401  registers the tasks
        from apps.notifications.checks import check_notification_settings
        from ecommerce import outbox

        # User and order events become notifications; each notification queues its delivery.
        topics = {
            **events.USER_TOPIC_EVENTS,
            **events.ORDER_TOPIC_EVENTS,
            **events.RETURN_TOPIC_EVENTS,
            **events.REFUND_TOPIC_EVENTS,
        }
        for topic, event in topics.items():
            outbox.register(topic, task=events.notify_task_name(event), queue=events.QUEUE)
        outbox.register(events.DELIVERY_REQUESTED, task=events.DELIVER_TASK, queue=events.QUEUE)
        outbox.register(
            events.WEBHOOK_DELIVERY_REQUESTED,
            task=events.DELIVER_WEBHOOK_TASK,
            queue=events.WEBHOOK_QUEUE,
        )
        checks.register(check_notification_settings)
