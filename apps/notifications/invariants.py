"""Notification invariants: every domain event has its notifications, and none is stuck.

An order event is its OrderEvent row (the order's history, written with the status change);
a registration is its `user.registered` outbox row (kept while the outbox keeps it). The
notifications an event should have produced are found by their dedup key
(event, subject, channel, endpoint), the same key that makes creating them idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

from apps.notifications import events
from apps.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
    WebhookEndpoint,
)
from apps.orders import events as order_events
from apps.orders.models import OrderEvent
from apps.users import events as user_events
from apps.users.models import User
from ecommerce.invariants import CheckContext, Outcome, invariant

# OrderEvent.to_status (from_status "" is the placement) -> the notification it causes.
STATUS_EVENTS: dict[str, str] = {
    topic.removeprefix("order."): str(event)
    for topic, event in events.ORDER_TOPIC_EVENTS.items()
    if topic != order_events.ORDER_PLACED
}
Key = tuple[str, str, str, int | None]


def _existing(subjects: list[str]) -> set[Key]:
    found: set[Key] = set()
    for start in range(0, len(subjects), 5000):
        found.update(
            Notification.objects.filter(subject__in=subjects[start : start + 5000]).values_list(
                "event", "subject", "channel", "endpoint_id"
            )
        )
    return found


def _endpoints_by_owner(owner_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    endpoints: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(owner_id__in=owner_ids, active=True).values(
        "pk", "owner_id", "events", "updated_at"
    ):
        endpoints[endpoint["owner_id"]].append(dict(endpoint))
    return endpoints


@invariant("notifications.every_event_notified")
def every_event_notified(context: CheckContext) -> Outcome:
    """Every order status change and registration older than the grace period has its
    email (active users with an address) and its webhooks (endpoints subscribed before it)."""
    # A return's steps (rows naming a return) change no order status: no status email.
    order_rows = OrderEvent.objects.filter(
        created_at__lt=context.settled_before(), order_return__isnull=True
    )
    if context.since is not None:
        order_rows = order_rows.filter(created_at__gte=context.since)
    wanted: list[tuple[str, str, int, Any, bool]] = []  # event, subject, user, when, webhooks
    for row in order_rows.values(
        "order_id", "from_status", "to_status", "created_at", "order__user_id"
    ):
        if row["from_status"] == "":
            event = str(NotificationEvent.ORDER_PLACED)
        elif row["to_status"] in STATUS_EVENTS:
            event = STATUS_EVENTS[row["to_status"]]
        else:
            continue
        wanted.append(
            (event, f"order:{row['order_id']}", row["order__user_id"], row["created_at"], True)
        )
    wanted.extend(_registrations(context))
    users = {
        u["pk"]: u
        for u in User.objects.filter(pk__in={w[2] for w in wanted}).values(
            "pk", "is_active", "email"
        )
    }
    endpoints = _endpoints_by_owner({w[2] for w in wanted})
    existing = _existing(sorted({w[1] for w in wanted}))
    outcome = Outcome(checked=len(wanted))
    for event, subject, user_id, when, webhooks in wanted:
        user = users.get(user_id)
        missing = []
        emailed = user is not None and user["is_active"] and user["email"]
        if emailed and (event, subject, NotificationChannel.EMAIL, None) not in existing:
            missing.append("email")
        for endpoint in endpoints.get(user_id, []) if webhooks else []:
            subscribed = event in endpoint["events"] and endpoint["updated_at"] < when
            key = (event, subject, NotificationChannel.WEBHOOK, endpoint["pk"])
            if subscribed and key not in existing:
                missing.append(f"webhook to endpoint {endpoint['pk']}")
        if missing:
            outcome.fail(f"{event} of {subject} at {when.isoformat()}: no {', '.join(missing)}")
    return outcome


def _registrations(context: CheckContext) -> list[tuple[str, str, int, Any, bool]]:
    from ecommerce.outbox.models import OutboxMessage

    messages = OutboxMessage.objects.filter(
        topic=user_events.USER_REGISTERED, created_at__lt=context.settled_before()
    )
    if context.since is not None:
        messages = messages.filter(created_at__gte=context.since)
    found: dict[int, tuple[str, str, int, Any, bool]] = {}
    # One row per handler of the topic: the first one dates the registration.
    for message in messages.order_by("created_at").values("payload", "created_at"):
        user_id = (
            message["payload"].get("user_id") if isinstance(message["payload"], dict) else None
        )
        if isinstance(user_id, int) and user_id not in found:
            event = str(NotificationEvent.USER_REGISTERED)
            found[user_id] = (event, f"user:{user_id}", user_id, message["created_at"], False)
    return list(found.values())


@invariant("notifications.none_stuck")
def none_stuck(context: CheckContext) -> Outcome:
    """No notification waits past the grace period: a pending one is due no later than
    then (its `next_attempt_at`, or when it was last touched), a sending one is not
    abandoned (untouched past NOTIFICATION_LOCK_TTL_SECONDS, when it may be reclaimed)."""
    waiting = Notification.objects.filter(
        status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING]
    )
    if context.since is not None:
        waiting = waiting.filter(created_at__gte=context.since)
    settled = context.settled_before()
    abandoned = settled - timedelta(seconds=settings.NOTIFICATION_LOCK_TTL_SECONDS)
    stuck = waiting.filter(
        Q(status=NotificationStatus.SENDING, updated_at__lt=abandoned)
        | Q(status=NotificationStatus.PENDING, next_attempt_at__lt=settled)
        | Q(status=NotificationStatus.PENDING, next_attempt_at__isnull=True, updated_at__lt=settled)
    )
    outcome = Outcome(checked=waiting.count())
    for row in stuck.order_by("pk").values(
        "pk", "event", "subject", "channel", "status", "attempts", "updated_at", "next_attempt_at"
    ):
        due = row["next_attempt_at"] or row["updated_at"]
        outcome.fail(
            f"notification {row['pk']} {row['event']} of {row['subject']} by {row['channel']} "
            f"{row['status']} after {row['attempts']} attempt(s), due since {due.isoformat()}"
        )
    return outcome
