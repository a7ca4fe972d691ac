"""Audit events as the API shows them."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import AuditEvent


class FieldChangeSerializer(serializers.Serializer[dict[str, object]]):
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class AuditEventOutputSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.IntegerField(source="actor_id", allow_null=True, read_only=True)
    object_type = serializers.SerializerMethodField()
    changes = serializers.DictField(child=FieldChangeSerializer(), read_only=True)

    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "occurred_at",
            "actor",
            "actor_label",
            "source",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
        )
        read_only_fields = fields

    def get_object_type(self, event: AuditEvent) -> str:
        """`app_label.model` of the changed object."""
        return f"{event.content_type.app_label}.{event.content_type.model}"
