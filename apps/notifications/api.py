"""Notifications (own; support sees all; support resends) and one's own webhook endpoints."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.notifications import selectors, services
from apps.notifications.exceptions import NotificationNotFound, WebhookEndpointNotFound
from apps.notifications.filters import NotificationFilter
from apps.notifications.models import Notification, WebhookEndpoint
from apps.notifications.serializers import (
    NotificationOutputSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointWithSecretOutputSerializer,
)
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.permissions import HasRole, Role

NOTIFICATION_EXAMPLE = OpenApiExample(
    "A delivered webhook",
    value={
        "id": 42,
        "public_id": "5d0c6f1e-8a3b-4c2d-9e7f-1a2b3c4d5e6f",
        "recipient": 7,
        "channel": "webhook",
        "event": "order_paid",
        "subject": "order:0b7e5c1a-3f2d-4e6a-8b9c-7d1e2f3a4b5c",
        "endpoint": 3,
        "status": "sent",
        "attempts": 2,
        "last_error": "attempt 1: HTTP 503",
        "created_at": "2026-01-05T10:15:00.120000Z",
        "sent_at": "2026-01-05T10:15:04.870000Z",
    },
    response_only=True,
    status_codes=["200", "202"],
)
ENDPOINT_VALUE = {
    "id": 3,
    "url": "https://hooks.example.com/shop",
    "description": "Order sync",
    "events": ["order_paid", "order_refunded"],
    "active": True,
    "consecutive_failures": 0,
    "disabled_at": None,
    "created_at": "2026-01-05T09:00:00Z",
    "updated_at": "2026-01-05T09:00:00Z",
}
ENDPOINT_EXAMPLE = OpenApiExample("An endpoint", value=ENDPOINT_VALUE, response_only=True)
ENDPOINT_WITH_SECRET_EXAMPLE = OpenApiExample(
    "The endpoint with its secret, shown this once",
    value={**ENDPOINT_VALUE, "secret": "whsec_4q9SxJ0bq0m3kH1vRz7c2Yp8tN5wLd6eFg2hA1uIo0s"},
    response_only=True,
)
ENDPOINT_INPUT_EXAMPLE = OpenApiExample(
    "Subscribe to payments and refunds",
    value={
        "url": "https://hooks.example.com/shop",
        "events": ["order_paid", "order_refunded"],
        "description": "Order sync",
    },
    request_only=True,
)


def _notification_id(pk: str) -> int:
    """The id in the URL; one no column can hold names no notification (404)."""
    try:
        return identifiers.parse_id(pk)
    except identifiers.InvalidNumber:
        raise NotificationNotFound(f"No notification {pk}.") from None


def _endpoint_id(pk: str) -> int:
    """The id in the URL; one no column can hold names no endpoint (404)."""
    try:
        return identifiers.parse_id(pk)
    except identifiers.InvalidNumber:
        raise WebhookEndpointNotFound(f"No webhook endpoint {pk}.") from None


class NotificationViewSet(viewsets.GenericViewSet):
    """Notifications by id. A customer sees their own; support and admin see all."""

    lookup_value_regex = identifiers.ID_PATTERN
    # For the schema only: get_queryset scopes by caller.
    queryset = Notification.objects.none()
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    filterset_class = NotificationFilter
    ordering_fields = ("created_at", "sent_at", "id")
    serializer_class = NotificationOutputSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "resend":
            return [HasRole.of(Role.SUPPORT)()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Notification]:
        return selectors.notifications_visible_to(self.request.user)

    @extend_schema(examples=[NOTIFICATION_EXAMPLE])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(NotificationOutputSerializer(page, many=True).data)

    @extend_schema(examples=[NOTIFICATION_EXAMPLE])
    def retrieve(self, request: Request, pk: str) -> Response:
        notification = selectors.get_notification_for(
            user=request.user, notification_id=_notification_id(pk)
        )
        return Response(NotificationOutputSerializer(notification).data)

    @extend_schema(
        request=None,
        responses={status.HTTP_202_ACCEPTED: NotificationOutputSerializer},
        examples=[NOTIFICATION_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str) -> Response:
        notification = selectors.get_notification_for(
            user=request.user, notification_id=_notification_id(pk)
        )
        notification = services.resend_notification(
            notification_id=notification.pk, by=request.user
        )
        return Response(
            NotificationOutputSerializer(notification).data, status=status.HTTP_202_ACCEPTED
        )


class WebhookEndpointViewSet(viewsets.GenericViewSet):
    """The caller's own webhook endpoints; another's are 404 to everyone."""

    lookup_value_regex = identifiers.ID_PATTERN
    queryset = WebhookEndpoint.objects.none()  # for the schema only: scoped by caller
    serializer_class = WebhookEndpointOutputSerializer
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return selectors.webhook_endpoints_of(owner=self.request.user)

    @extend_schema(examples=[ENDPOINT_EXAMPLE])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WebhookEndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        parameters=[location_parameter("The endpoint.")],
        responses={status.HTTP_201_CREATED: WebhookEndpointWithSecretOutputSerializer},
        examples=[ENDPOINT_INPUT_EXAMPLE, ENDPOINT_WITH_SECRET_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        serializer = WebhookEndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("active", None)  # a new endpoint starts active
        endpoint = services.create_webhook_endpoint(owner=request.user, **data)
        return Response(
            WebhookEndpointWithSecretOutputSerializer(endpoint).data,
            status=status.HTTP_201_CREATED,
            headers=location("webhooks", endpoint.pk),
        )

    @extend_schema(examples=[ENDPOINT_EXAMPLE])
    def retrieve(self, request: Request, pk: str) -> Response:
        endpoint = selectors.get_webhook_endpoint_for(
            owner=request.user, endpoint_id=_endpoint_id(pk)
        )
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    def _change(self, request: Request, pk: str, *, partial: bool) -> Response:
        endpoint_id = _endpoint_id(pk)  # a malformed address is a 404 whatever the body
        serializer = WebhookEndpointInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        endpoint = services.update_webhook_endpoint(
            owner=request.user, endpoint_id=endpoint_id, **serializer.validated_data
        )
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        examples=[ENDPOINT_INPUT_EXAMPLE, ENDPOINT_EXAMPLE],
    )
    def update(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, partial=False)

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        examples=[
            OpenApiExample("Enable again", value={"active": True}, request_only=True),
            ENDPOINT_EXAMPLE,
        ],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        return self._change(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        services.delete_webhook_endpoint(owner=request.user, endpoint_id=_endpoint_id(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=WebhookEndpointWithSecretOutputSerializer,
        examples=[ENDPOINT_WITH_SECRET_EXAMPLE],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        endpoint = services.rotate_webhook_secret(owner=request.user, endpoint_id=_endpoint_id(pk))
        return Response(WebhookEndpointWithSecretOutputSerializer(endpoint).data)

    @extend_schema(
        request=None,
        responses={status.HTTP_202_ACCEPTED: NotificationOutputSerializer},
        examples=[
            OpenApiExample(
                "A queued ping",
                value={
                    "id": 51,
                    "public_id": "c3a9e1f0-7b2d-4e5f-8a6b-9c0d1e2f3a4b",
                    "recipient": 7,
                    "channel": "webhook",
                    "event": "ping",
                    "subject": "ping:9b1c3f0e5d2a4c6b8e7f1a2b3c4d5e6f",
                    "endpoint": 3,
                    "status": "pending",
                    "attempts": 0,
                    "last_error": "",
                    "created_at": "2026-01-05T11:00:00Z",
                    "sent_at": None,
                },
                response_only=True,
                status_codes=["202"],
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        notification = services.send_webhook_ping(owner=request.user, endpoint_id=_endpoint_id(pk))
        return Response(
            NotificationOutputSerializer(notification).data, status=status.HTTP_202_ACCEPTED
        )
