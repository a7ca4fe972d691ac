"""Turning domain events into notifications, once each, and queueing their delivery."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from apps.notifications import events, selectors
from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
)
from apps.orders import selectors as orders_selectors
from apps.orders.return_serializers import return_to_dict
from apps.orders.serializers import order_to_dict
from apps.users import selectors as users_selectors
from ecommerce import outbox
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


ORDER_SUBJECT_PREFIX = "order:"


def order_subject(order_id: int) -> str:
    """The stored subject of an order's notifications: its internal id.

    The subject is the dedup key of (event, subject, channel, endpoint) and what the sweeper
    and the invariants join to orders by id, so it stays the internal id; the API shows
    the order's public id instead (NotificationOutputSerializer), for every row, old and new.
    """
    return f"{ORDER_SUBJECT_PREFIX}{order_id}"


def queue_delivery(notification: Notification) -> None:
    """Ask for one delivery through the outbox, on the channel's queue (webhooks apart);
    caller is inside the writing transaction."""
    topic = (
        events.WEBHOOK_DELIVERY_REQUESTED
        if notification.channel == NotificationChannel.WEBHOOK
        else events.DELIVERY_REQUESTED
    )
    outbox.publish(topic, {"notification_id": notification.pk})


def create_once(
    *,
    recipient_id: int,
    channel: str,
    event: str,
    subject: str,
    context: dict[str, Any],
    endpoint_id: int | None = None,
) -> tuple[Notification, bool]:
    """Create the notification of (event, subject, channel, endpoint), or return the one that
    exists; the second value says whether it is new.

    The unique constraint decides, so two handlers racing on one event make one row.
    """
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient_id=recipient_id,
                channel=channel,
                event=event,
                subject=subject,
                endpoint_id=endpoint_id,
                context=context,
            )
    except IntegrityError:
        existing = Notification.objects.filter(
            event=event, subject=subject, channel=channel, endpoint_id=endpoint_id
        ).first()
        if existing is None:
            raise
        return existing, False
    return notification, True


def _fan_out(
    *, event: str, subject: str, recipient: Any, context: dict[str, Any], webhooks: bool
) -> list[Notification]:
    """Email the recipient and, with `webhooks`, post to each endpoint of theirs subscribed
    to `event`; queue what is still pending (a handler that runs again re-queues rows a
    lost message left behind, and never duplicates one)."""
    notifications: list[Notification] = []
    with transaction.atomic():
        if recipient.is_active and recipient.email:
            notification, _ = create_once(
                recipient_id=recipient.pk,
                channel=NotificationChannel.EMAIL,
                event=event,
                subject=subject,
                context=context,
            )
            notifications.append(notification)
        if webhooks:
            for endpoint in selectors.subscribed_endpoints(owner_id=recipient.pk, event=event):
                notification, _ = create_once(
                    recipient_id=recipient.pk,
                    channel=NotificationChannel.WEBHOOK,
                    event=event,
                    subject=subject,
                    context=context,
                    endpoint_id=endpoint.pk,
                )
                notifications.append(notification)
        for notification in notifications:
            if notification.status == NotificationStatus.PENDING:
                queue_delivery(notification)
    logger.info(
        "notifications_created",
        event_name=str(event),
        subject=subject,
        notification_ids=[notification.pk for notification in notifications],
    )
    return notifications


def notify_order_event(*, event: str, order_id: int) -> list[Notification]:
    """Notify an order's owner of `event` by email and their subscribed webhooks.

    The order as it is now (items, totals, status) becomes the event's snapshot. Safe to
    call again for the same event: it never creates a second notification.
    """
    order = selectors.order_with_items(order_id=order_id)
    if order is None:
        logger.warning("notification_order_missing", event_name=event, order_id=order_id)
        return []
    context = {"order": order_to_dict(order, order.items.all())}
    return _fan_out(
        event=event,
        subject=order_subject(order.pk),
        recipient=order.user,
        context=context,
        webhooks=True,
    )


def notify_return_event(*, event: str, return_id: int) -> list[Notification]:
    """Email a return's customer about one of its steps (`return:<public id>` is the subject:
    one email per step and return). The return and its order, as they are now, are the
    snapshot. Safe to call again: it never creates a second notification."""
    order_return = orders_selectors.return_with_lines(return_id=return_id)
    if order_return is None:
        logger.warning("notification_return_missing", event_name=event, return_id=return_id)
        return []
    order = order_return.order
    context = {
        "order": order_to_dict(order, order.items.all()),
        "return": return_to_dict(order_return),
    }
    return _fan_out(
        event=event,
        subject=f"return:{order_return.public_id}",
        recipient=order.user,
        context=context,
        webhooks=False,
    )


def notify_user_registered(*, user_id: int) -> list[Notification]:
    """Send the welcome email (with a set-password link when the account has no password)."""
    user = users_selectors.active_user(user_id=user_id)
    if user is None:
        logger.warning("notification_user_missing", user_id=user_id)
        return []
    context = {"user": {"id": user.pk, "name": user.name, "email": user.email}}
    return _fan_out(
        event=NotificationEvent.USER_REGISTERED,
        subject=f"user:{user.pk}",
        recipient=user,
        context=context,
        webhooks=False,
    )


STAFF_ROLES = ("support", "admin")


def refund_subject(order_public_id: str, refund: dict[str, Any]) -> str:
    """The subject of one refund's notifications: the refund's public id when the event
    names it, else the order's public id and what is still paid after it (which only
    falls, so it tells one partial refund of an order from the next)."""
    if refund.get("refund_id"):
        return f"refund:{refund['refund_id']}"
    return f"refund:{order_public_id}:{refund.get('amount_paid', '')}"


def notify_refund_event(*, event: str, order_id: int, refund: dict[str, Any]) -> list[Notification]:
    """Tell the buyer (email and subscribed webhooks) of one refund that leaves the order's
    status as it is: a partial refund, or a compensation. A compensation is also emailed
    to each active staff member of the support and admin roles. Safe to call again."""
    order = selectors.order_with_items(order_id=order_id)
    if order is None:
        logger.warning("notification_order_missing", event_name=event, order_id=order_id)
        return []
    data = {
        "amount": str(refund.get("amount", "")),
        "currency": order.currency,
        "reason": str(refund.get("reason", ""))[:255],
        "amount_paid": str(refund.get("amount_paid", order.amount_paid)),
    }
    context = {"order": order_to_dict(order, order.items.all()), "refund": data}
    subject = refund_subject(str(order.public_id), refund)
    notifications = _fan_out(
        event=event, subject=subject, recipient=order.user, context=context, webhooks=True
    )
    if event == NotificationEvent.PAYMENT_COMPENSATED:
        for member in users_selectors.active_staff_with_roles(roles=STAFF_ROLES):
            notifications += _fan_out(
                event=event,
                subject=f"{subject}:staff:{member.pk}",
                recipient=member,
                context={**context, "staff": True},
                webhooks=False,
            )
    return notifications
