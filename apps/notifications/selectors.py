"""Reads of notifications and webhook endpoints, scoped to the reader; event snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.notifications.exceptions import NotificationNotFound, WebhookEndpointNotFound
from apps.notifications.models import Notification, NotificationStatus, WebhookEndpoint
from apps.orders.models import Order
from ecommerce.api.permissions import Role, has_role


def can_see_all_notifications(user: Any) -> bool:
    return has_role(user, Role.SUPPORT)


def notifications_visible_to(user: Any) -> QuerySet[Notification]:
    """Support and admin see every notification; anyone else sees their own."""
    queryset = Notification.objects.select_related("recipient", "endpoint").order_by(
        "-created_at", "-pk"
    )
    if can_see_all_notifications(user):
        return queryset
    return queryset.filter(recipient=user)


def get_notification_for(*, user: Any, notification_id: int) -> Notification:
    """One visible notification. Raises NotificationNotFound (also for another's)."""
    notification = notifications_visible_to(user).filter(pk=notification_id).first()
    if notification is None:
        raise NotificationNotFound(f"No notification {notification_id}.")
    return notification


def webhook_endpoints_of(*, owner: Any) -> QuerySet[WebhookEndpoint]:
    """A user's own endpoints: nobody, staff included, reads another's."""
    return WebhookEndpoint.objects.filter(owner=owner).order_by("pk")


def get_webhook_endpoint_for(*, owner: Any, endpoint_id: int) -> WebhookEndpoint:
    """One of the user's endpoints. Raises WebhookEndpointNotFound (also for another's)."""
    endpoint = webhook_endpoints_of(owner=owner).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise WebhookEndpointNotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def subscribed_endpoints(*, owner_id: int, event: str) -> list[WebhookEndpoint]:
    """The owner's active endpoints subscribed to `event` (filtered here: few per owner,
    and JSON containment is not portable to the embedded SQLite)."""
    endpoints = WebhookEndpoint.objects.filter(owner_id=owner_id, active=True).order_by("pk")
    return [endpoint for endpoint in endpoints if event in endpoint.events]


def order_with_items(*, order_id: int) -> Order | None:
    """The order an event is about, with its owner and items, for the event's snapshot."""
    return (
        Order.objects.select_related("user").prefetch_related("items").filter(pk=order_id).first()
    )


def notifications_to_requeue(
    *, include_failed: bool, since: datetime | None = None
) -> QuerySet[Notification]:
    """Notifications whose delivery may have been lost, oldest first.

    Pending or sending ones untouched for NOTIFICATION_LOCK_TTL_SECONDS (their task was
    lost, or their worker died mid-send), and with `include_failed` the failed ones.
    """
    quiet_since = timezone.now() - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS)
    stuck = Q(
        status__in=(NotificationStatus.PENDING, NotificationStatus.SENDING),
        updated_at__lt=quiet_since,
    )
    condition = stuck | Q(status=NotificationStatus.FAILED) if include_failed else stuck
    queryset = Notification.objects.filter(condition)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    return queryset.order_by("pk")
