"""Input and output shapes of the notifications and webhooks API."""

from __future__ import annotations

from rest_framework import serializers

from apps.notifications.models import WEBHOOK_EVENTS, Notification, WebhookEndpoint
from ecommerce.api import fields


class NotificationOutputSerializer(serializers.ModelSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    sent_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = (
            "id",
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
