"""Reads of the audit log."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_events() -> QuerySet[AuditEvent]:
    """Every event, newest first, with its object type joined."""
    return AuditEvent.objects.select_related("content_type").order_by("-occurred_at", "-pk")
