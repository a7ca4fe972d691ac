"""Order endpoints: place (idempotent), list, read and cancel."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.orders import selectors, services
from apps.orders.exceptions import OrderForbidden
from apps.orders.filters import OrderFilter
from apps.orders.models import Order
from apps.orders.serializers import (
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    order_detail_to_dict,
    order_to_dict,
)
from apps.users import selectors as users_selectors
from ecommerce.api.idempotency import REPLAYED_HEADER, fingerprint, idempotency_key_from


class OrderViewSet(viewsets.GenericViewSet):
    """Orders by their public id. Customers see their own; support and admin see all."""

    lookup_field = "public_id"
    lookup_value_regex = r"[0-9a-fA-F-]{32,36}"
    filterset_class = OrderFilter
    ordering_fields = ("created_at", "total")

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_visible_to(self.request.user)

    def _owner(self, user_id: int | None) -> Any:
        """Whose order this is: the caller, or (staff only) the user named by user_id."""
        caller = self.request.user
        if user_id is None or user_id == caller.pk:
            return caller
        if not selectors.can_see_all_orders(caller):
            raise OrderForbidden("You can only place orders for yourself.")
        owner = users_selectors.active_user(user_id=user_id)
        if owner is None:
            raise ValidationError({"user_id": f"No active user {user_id}."})
        return owner

    def create(self, request: Request) -> Response:
        key = idempotency_key_from(request)
        serializer = OrderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token = data.get("payment_token")
        if not token:
            if not settings.DEBUG:
                raise ValidationError({"payment_token": "This field is required."})
            token = settings.PAYMENT_SANDBOX_SUCCESS_TOKEN
        order, created = services.place_order(
            user=self._owner(data.get("user_id")),
            lines=[services.OrderLine(line["id"], line["quantity"]) for line in data["items"]],
            payment_token=token,
            idempotency_key=key,
            fingerprint=fingerprint(data) if key else "",
            placed_by=request.user,
        )
        headers = {"Location": f"/api/orders/{order.public_id}"}
        if not created:
            headers[REPLAYED_HEADER] = "true"
        return Response(order.creation_response, status=status.HTTP_201_CREATED, headers=headers)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([order_to_dict(o, o.items.all()) for o in page])

    def retrieve(self, request: Request, public_id: str) -> Response:
        order = selectors.get_order_for(user=request.user, public_id=public_id)
        return Response(order_detail_to_dict(order))

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, public_id: str) -> Response:
        order = selectors.get_order_for(user=request.user, public_id=public_id)
        serializer = OrderCancelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.cancel_order(
            order_id=order.pk, by=request.user, reason=serializer.validated_data["reason"]
        )
        order = selectors.get_order_for(user=request.user, public_id=public_id)
        return Response(order_detail_to_dict(order))
