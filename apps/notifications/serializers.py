"""Input and output shapes of the notifications and webhooks API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from apps.notifications import selectors
from apps.notifications.models import WEBHOOK_EVENTS, Notification, WebhookEndpoint
from apps.notifications.services.creation import ORDER_SUBJECT_PREFIX
from ecommerce.api import fields

ORDER_PUBLIC_IDS = "order_public_ids"


def _order_id(subject: str) -> int | None:
    if not subject.startswith(ORDER_SUBJECT_PREFIX):
        return None
    digits = subject.removeprefix(ORDER_SUBJECT_PREFIX)
    return int(digits) if digits.isascii() and digits.isdigit() else None


def order_public_ids_of(notifications: Iterable[Notification]) -> dict[int, uuid.UUID]:
    """The public ids of the orders `notifications` are about, from one query."""
    ids = {_order_id(notification.subject) for notification in notifications}
    ids.discard(None)
    return selectors.order_public_ids(order_ids=ids) if ids else {}  # type: ignore[arg-type]


def public_subject(subject: str, order_public_ids: dict[int, uuid.UUID]) -> str:
    """`order:<public id>` for an order's notification (stored as `order:<internal id>`,
    see services.creation.order_subject); any other subject as stored."""
    order_id = _order_id(subject)
    if order_id is None or order_id not in order_public_ids:
        return subject
    return f"{ORDER_SUBJECT_PREFIX}{order_public_ids[order_id]}"


class NotificationListSerializer(serializers.ListSerializer):
    """Reads the public ids of a page's orders once for all its rows."""

    def to_representation(self, data: Any) -> list[Any]:
        rows = list(data.all() if hasattr(data, "all") else data)
        self.context[ORDER_PUBLIC_IDS] = order_public_ids_of(rows)
        return list(super().to_representation(rows))


class NotificationOutputSerializer(serializers.ModelSerializer):
    public_id = serializers.UUIDField(
        read_only=True,
        help_text="The id its deliveries carry: the webhook's `webhook-id` and `X-Webhook-Id` "
        "headers and body `id`, the email's `X-Notification-Id` header.",
    )
    subject = serializers.SerializerMethodField(
        help_text="What it is about: `order:<the order's public id>`, `user:<id>`, ..."
    )
    endpoint = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    sent_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Notification
        list_serializer_class = NotificationListSerializer
        fields = (
            "id",
            "public_id",
            "recipient",
            "channel",
            "event",
            "subject",
            "endpoint",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
        )
        read_only_fields = fields

    def get_subject(self, notification: Notification) -> str:
        public_ids = self.context.get(ORDER_PUBLIC_IDS)
        if public_ids is None:
            public_ids = order_public_ids_of([notification])
        return public_subject(notification.subject, public_ids)


class WebhookEndpointInputSerializer(serializers.Serializer):
    """Create (url required) or change (`partial=True`) an endpoint; never the secret."""

    url = fields.URLField(max_length=2000)
    events = serializers.ListField(
        child=fields.ChoiceField(choices=WEBHOOK_EVENTS),
        allow_empty=False,
        max_length=len(WEBHOOK_EVENTS),
        required=False,
    )
    description = fields.CharField(max_length=200, allow_blank=True, required=False)
    active = fields.BooleanField(required=False)

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        return value


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENTS))
    disabled_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = WebhookEndpoint
        fields: tuple[str, ...] = (
            "id",
            "url",
            "description",
            "events",
            "active",
            "consecutive_failures",
            "disabled_at",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = fields


class WebhookEndpointWithSecretOutputSerializer(WebhookEndpointOutputSerializer):
    """Only in the answers to creation and rotation: the one time the secret is shown."""

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = (*WebhookEndpointOutputSerializer.Meta.fields, "secret")
        read_only_fields = fields
