"""The outbox topics the notifications app listens to and the ones it publishes.

Domain topics become notification events here; `notification.delivery_requested` (email)
and `notification.webhook_delivery_requested` (payload `{"notification_id": <pk>}`) queue
one delivery, written in the transaction that created or reset the notification so a lost
broker message is re-sent by the relay. Webhook deliveries have a queue of their own
(`webhooks`, consumed by its own worker pool): a receiver that answers slowly holds only
the webhook workers, never the charges and emails.
"""

from __future__ import annotations

from apps.notifications.models import NotificationEvent
from apps.orders import events as order_events
from apps.orders.models import OrderStatus
from apps.payments import events as payment_events
from apps.users import events as user_events

DELIVERY_REQUESTED = "notification.delivery_requested"
WEBHOOK_DELIVERY_REQUESTED = "notification.webhook_delivery_requested"
QUEUE = "notifications"
WEBHOOK_QUEUE = "webhooks"

E = NotificationEvent
# Topic published by the orders app -> the event its notifications carry.
ORDER_TOPIC_EVENTS: dict[str, NotificationEvent] = {
    order_events.ORDER_PLACED: E.ORDER_PLACED,
    order_events.status_topic(OrderStatus.PAID): E.ORDER_PAID,
    order_events.status_topic(OrderStatus.PAYMENT_FAILED): E.PAYMENT_FAILED,
    order_events.status_topic(OrderStatus.CANCELLED): E.ORDER_CANCELLED,
    order_events.status_topic(OrderStatus.EXPIRED): E.ORDER_EXPIRED,
    order_events.status_topic(OrderStatus.FULFILLED): E.ORDER_FULFILLED,
    order_events.status_topic(OrderStatus.REFUNDED): E.ORDER_REFUNDED,
}
# The status an order enters -> the event its notifications carry (placement, the entry
# into the first status, is ORDER_PLACED: an order event with no `from_status`).
STATUS_EVENTS: dict[str, NotificationEvent] = {
    status: ORDER_TOPIC_EVENTS[order_events.status_topic(status)]
    for status in OrderStatus
    if order_events.status_topic(status) in ORDER_TOPIC_EVENTS
}
# A return's step -> its email (customers only: returns are not webhook events).
RETURN_TOPIC_EVENTS: dict[str, NotificationEvent] = {
    order_events.RETURN_REQUESTED: E.RETURN_REQUESTED,
    order_events.RETURN_APPROVED: E.RETURN_APPROVED,
    order_events.RETURN_REJECTED: E.RETURN_REJECTED,
    order_events.RETURN_RECEIVED: E.RETURN_RECEIVED,
    order_events.RETURN_REFUNDED: E.RETURN_REFUNDED,
}
# Refunds that leave an order's status as it is: one notification per refund, about the
# refund (its payload names it), sent to the buyer (email and webhooks); a compensation
# is also emailed to staff (support and admin).
REFUND_TOPIC_EVENTS: dict[str, NotificationEvent] = {
    order_events.ORDER_PARTIALLY_REFUNDED: E.ORDER_PARTIALLY_REFUNDED,
    payment_events.PAYMENT_COMPENSATED: E.PAYMENT_COMPENSATED,
}
USER_TOPIC_EVENTS: dict[str, NotificationEvent] = {
    user_events.USER_REGISTERED: E.USER_REGISTERED,
}


def notify_task_name(event: str) -> str:
    """The Celery task that turns one domain event into notifications."""
    return f"notifications.notify_{event}"


DELIVER_TASK = "notifications.deliver"
DELIVER_WEBHOOK_TASK = "notifications.deliver_webhook"
SWEEP_TASK = "notifications.sweep"
