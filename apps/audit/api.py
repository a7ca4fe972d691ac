"""`GET /api/audit-events` and `/api/audit-events/{id}`: staff who may view the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit import selectors
from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditEvent
from apps.audit.serializers import AuditEventOutputSerializer
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter

VIEW_PERMISSION = "audit.view_auditevent"
EVENT_EXAMPLE = OpenApiExample(
    "A price changed in the admin",
    value={
        "id": 981,
        "occurred_at": "2026-01-05T10:15:00.120000Z",
        "actor": 7,
        "actor_label": "ops@example.com",
        "source": "admin",
        "action": "update",
        "object_type": "catalog.productvariant",
        "object_id": "42",
        "object_repr": "Desk lamp (LAMP-1)",
        "changes": {"price": {"before": "10.00", "after": "12.50"}},
        "request_id": "5f2b9c0e8d7a4e1f9b3c2d1a0e9f8b7c",
    },
    response_only=True,
    status_codes=["200"],
)


class CanViewAuditLog(BasePermission):
    """Authenticated, and holding `audit.view_auditevent` (the admin role does)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(VIEW_PERMISSION))


class AuditEventViewSet(viewsets.GenericViewSet):
    """Staff changes, newest first; nobody writes here (the log is append-only)."""

    lookup_value_regex = identifiers.ID_PATTERN
    queryset = AuditEvent.objects.none()  # for the schema only
    permission_classes = (CanViewAuditLog,)
    serializer_class = AuditEventOutputSerializer
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    filterset_class = AuditEventFilter
    ordering_fields = ("occurred_at", "id")
    ordering = ("-occurred_at", "-id")

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return selectors.audit_events()

    @extend_schema(examples=[EVENT_EXAMPLE])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventOutputSerializer(page, many=True).data)

    @extend_schema(examples=[EVENT_EXAMPLE])
    def retrieve(self, request: Request, pk: str) -> Response:
        event = self.get_queryset().filter(pk=identifiers.id_from_path(pk)).first()
        if event is None:
            raise NotFound("No audit event with that id.")
        return Response(AuditEventOutputSerializer(event).data)
