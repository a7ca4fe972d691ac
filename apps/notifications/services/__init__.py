"""Writes of the notifications app: creation from events, delivery, webhook endpoints.

Split by sub-domain (STYLE.md R1); import from here.
"""

from apps.notifications.services.creation import (
    create_once,
    notify_order_event,
    notify_refund_event,
    notify_return_event,
    notify_user_registered,
    queue_delivery,
)
from apps.notifications.services.delivery import (
    DeliveryResult,
    deliver_notification,
    requeue_notifications,
    resend_notification,
    retry_horizon_for,
    retry_policy_for,
)
from apps.notifications.services.endpoints import (
    check_webhook_url,
    create_webhook_endpoint,
    delete_webhook_endpoint,
    rotate_webhook_secret,
    send_webhook_ping,
    update_webhook_endpoint,
)
from apps.notifications.services.sweeping import (
    SweepResult,
    create_missing_notifications,
    sweep_notifications,
)

__all__ = [
    "DeliveryResult",
    "SweepResult",
    "check_webhook_url",
    "create_missing_notifications",
    "create_once",
    "create_webhook_endpoint",
    "delete_webhook_endpoint",
    "deliver_notification",
    "notify_order_event",
    "notify_refund_event",
    "notify_return_event",
    "notify_user_registered",
    "queue_delivery",
    "requeue_notifications",
    "resend_notification",
    "retry_horizon_for",
    "retry_policy_for",
    "rotate_webhook_secret",
    "send_webhook_ping",
    "sweep_notifications",
    "update_webhook_endpoint",
]
