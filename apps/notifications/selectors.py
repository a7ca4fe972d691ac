"""Reads of notifications and webhook endpoints, scoped to the reader; event snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from apps.notifications import events
from apps.notifications.exceptions import NotificationNotFound, WebhookEndpointNotFound
from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
    WebhookEndpoint,
)
from apps.orders import selectors as orders_selectors
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


def order_public_ids(*, order_ids: Iterable[int]) -> dict[int, uuid.UUID]:
    """The public id of each of `order_ids` that exists, from one query."""
    return dict(Order.objects.filter(pk__in=set(order_ids)).values_list("pk", "public_id"))


def order_with_items(*, order_id: int) -> Order | None:
    """The order an event is about, with its owner and items, for the event's snapshot."""
    return (
        Order.objects.select_related("user").prefetch_related("items").filter(pk=order_id).first()
    )


def notifications_to_requeue(
    *, include_failed: bool, since: datetime | None = None
) -> QuerySet[Notification]:
    """Notifications to queue now, oldest first.

    - pending and due (no `next_attempt_at`, or it has passed) and either not queued since
      it became due (a retry that waited in the database: `updated_at` is older than
      `next_attempt_at`) or quiet for NOTIFICATION_REQUEUE_AFTER_SECONDS (its queued
      message was lost, or sits behind a long backlog: queueing it again is harmless);
    - sending and untouched for NOTIFICATION_LOCK_TTL_SECONDS (its worker died mid-send);
    - with `include_failed`, the failed ones.
    """
    now = timezone.now()
    quiet_since = now - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    due = Q(status=NotificationStatus.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    not_on_its_way = Q(updated_at__lt=quiet_since) | Q(next_attempt_at__gt=F("updated_at"))
    abandoned = Q(
        status=NotificationStatus.SENDING,
        updated_at__lt=now - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS),
    )
    stuck = (due & not_on_its_way) | abandoned
    condition = stuck | Q(status=NotificationStatus.FAILED) if include_failed else stuck
    queryset = Notification.objects.filter(condition)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    return queryset.order_by("pk")


@dataclass(frozen=True)
class UnhandledEvent:
    """A domain event with no notification: an order's status change or a registration."""

    event: str
    order_id: int | None = None
    user_id: int | None = None


def _emailed(event: Any, subject: Any) -> Exists:
    """The event's email exists (made in one transaction with its webhooks). Asked with
    `endpoint IS NULL` so that the partial unique index of emails answers it."""
    return Exists(
        Notification.objects.filter(
            event=event,
            subject=subject,
            channel=NotificationChannel.EMAIL,
            endpoint__isnull=True,
        )
    )


def unhandled_events(*, since: datetime, until: datetime, limit: int) -> list[UnhandledEvent]:
    """Domain events of [since, until) that should have made notifications and made none,
    oldest first, at most `limit` of each kind.

    An order event should have when its owner is active with an email address (the email
    is always made with the webhooks, in one transaction: no email of the event's
    (event, subject) means the handler never ran). A registration (an active
    customer account with an email joined in the window) should have its welcome email.
    """
    whens = [When(from_status="", then=Value(NotificationEvent.ORDER_PLACED.value))]
    whens += [
        When(to_status=status, then=Value(event.value))
        for status, event in events.STATUS_EVENTS.items()
    ]
    order_rows = (
        orders_selectors.status_events_between(since=since, until=until)
        .filter(order__user__is_active=True)
        .exclude(order__user__email="")
        .annotate(
            notification_event=Case(*whens, default=Value(""), output_field=CharField()),
            notification_subject=Concat(
                Value("order:"), Cast("order_id", CharField()), output_field=CharField()
            ),
        )
        .exclude(notification_event="")
        .filter(~_emailed(OuterRef("notification_event"), OuterRef("notification_subject")))
        .values_list("notification_event", "order_id")[:limit]
    )
    found = [UnhandledEvent(event=event, order_id=order_id) for event, order_id in order_rows]
    user_ids = (
        get_user_model()
        .objects.filter(
            date_joined__gte=since,
            date_joined__lt=until,
            is_active=True,
            groups__name=Role.CUSTOMER,
        )
        .exclude(email="")
        .annotate(
            notification_subject=Concat(
                Value("user:"), Cast("pk", CharField()), output_field=CharField()
            )
        )
        .filter(
            ~_emailed(NotificationEvent.USER_REGISTERED.value, OuterRef("notification_subject"))
        )
        .order_by("date_joined", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    found += [
        UnhandledEvent(event=NotificationEvent.USER_REGISTERED, user_id=user_id)
        for user_id in user_ids
    ]
    return found
