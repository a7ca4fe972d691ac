"""Order endpoints: place (idempotent), list, read, cancel and (staff) fulfil."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.catalog.exceptions import ProductUnavailable
from apps.inventory.exceptions import OutOfStock
from apps.orders import selectors, services
from apps.orders.exceptions import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    IllegalTransition,
    InvalidOrder,
    OrderForbidden,
    OrderNotFound,
)
from apps.orders.filters import OrderFilter
from apps.orders.models import Order
from apps.orders.serializers import (
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailOutputSerializer,
    OrderFulfilInputSerializer,
    OrderOutputSerializer,
    order_detail_to_dict,
    order_to_dict,
)
from apps.users import selectors as users_selectors
from ecommerce.api import identifiers, ratelimit
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    fingerprint,
    idempotency_key_from,
)
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.schema import problems

PLACE_FOR_CUSTOMER = "orders.place_order_for_customer"
FULFIL = "orders.fulfil_order"


class OrderViewSet(viewsets.GenericViewSet):
    """Orders by their public id. Customers see their own; support and admin see all."""

    lookup_field = "public_id"
    lookup_value_regex = identifiers.UUID_PATTERN
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    filterset_class = OrderFilter
    ordering_fields = ("created_at", "total")
    rate_limit_scope = {"create": ratelimit.ORDERS}
    # How `create` places the order: the API serves this view through apps.checkout, which
    # sets its own (pricing with taxes and promotions); orders never imports checkout.
    place_order = staticmethod(services.place_order)
    # For the schema only: orders are rendered by hand, and get_queryset scopes by caller.
    serializer_class = OrderOutputSerializer
    queryset = Order.objects.none()

    def get_queryset(self) -> QuerySet[Order]:
        return selectors.orders_visible_to(self.request.user)

    def _owner(self, user_id: int | None) -> Any:
        """Whose order this is: the caller, or the user named by user_id.

        Ordering for someone else takes the explicit `orders.place_order_for_customer`
        permission (admins hold it); seeing every order, as support does, is not enough.
        """
        caller = self.request.user
        if user_id is None or user_id == caller.pk:
            return caller
        if not caller.has_perm(PLACE_FOR_CUSTOMER):
            raise OrderForbidden("You can only place orders for yourself.")
        owner = users_selectors.active_user(user_id=user_id)
        if owner is None:
            raise ValidationError({"user_id": f"No active user {user_id}."})
        return owner

    @extend_schema(
        summary="Place an order",
        description=(
            "Reserves stock and queues the payment. With an `Idempotency-Key`, a retry with "
            "the same body returns the first order (`Idempotent-Replayed: true`)."
        ),
        request=OrderCreateInputSerializer,
        parameters=[
            OpenApiParameter(
                HEADER,
                str,
                OpenApiParameter.HEADER,
                description="1 to 255 printable ASCII characters; a UUID is ideal.",
            ),
            location_parameter("The order."),
            OpenApiParameter(
                REPLAYED_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[201],
                enum=["true"],
                description="Present when this is the stored answer to an earlier request.",
            ),
        ],
        responses={
            status.HTTP_201_CREATED: OpenApiResponse(OrderOutputSerializer, "The order."),
            **problems(
                InvalidOrder("All items of an order must be priced in one currency."),
                ProductUnavailable(lookups=["TEE-OLD"]),
                OrderForbidden("You can only place orders for yourself."),
                OutOfStock(shortfalls={"TEE-BLK-M": {"requested": 3, "available": 1}}),
                IdempotentRequestInProgress(key="3f1c9e0a-order-1"),
                IdempotencyKeyReused(key="3f1c9e0a-order-1"),
            ),
        },
    )
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
        order, created = self.place_order(
            user=self._owner(data.get("user_id")),
            lines=[services.OrderLine(line["id"], line["quantity"]) for line in data["items"]],
            payment_token=token,
            shipping_country=data.get("shipping_country", ""),
            idempotency_key=key,
            fingerprint=fingerprint(data) if key else "",
            placed_by=request.user,
        )
        headers = location("orders", order.public_id)
        if not created:
            headers[REPLAYED_HEADER] = "true"
        return Response(order.creation_response, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(summary="List orders (own, or all for staff)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([order_to_dict(o, o.items.all()) for o in page])

    @extend_schema(summary="Read an order with its history", responses=OrderDetailOutputSerializer)
    def retrieve(self, request: Request, public_id: str) -> Response:
        order = selectors.get_order_for(user=request.user, public_id=_public_id(public_id))
        return Response(order_detail_to_dict(order))

    @extend_schema(
        summary="Cancel an order",
        description="Releases its stock; a paid order is refunded.",
        request=OrderCancelInputSerializer,
        responses={
            status.HTTP_200_OK: OrderDetailOutputSerializer,
            **problems(
                IllegalTransition(
                    order_id="7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f",
                    from_status="fulfilled",
                    to_status="cancelled",
                )
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, public_id: str) -> Response:
        public_id = _public_id(public_id)
        order = selectors.get_order_for(user=request.user, public_id=public_id)
        serializer = OrderCancelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.cancel_order(
            order_id=order.pk, by=request.user, reason=serializer.validated_data["reason"]
        )
        order = selectors.get_order_for(user=request.user, public_id=_public_id(public_id))
        return Response(order_detail_to_dict(order))

    @extend_schema(
        summary="Fulfil an order (staff)",
        description=(
            "The goods leave: a paid order, or an authorized one (capture at fulfilment), "
            "becomes fulfilled. For an authorized order the payment captures what ships "
            "(`amount_paid` says it once captured) and releases the rest; `lines` ships "
            "part of it, the other units going back to stock. Needs `orders.fulfil_order`."
        ),
        request=OrderFulfilInputSerializer,
        responses={
            status.HTTP_200_OK: OrderDetailOutputSerializer,
            **problems(
                InvalidOrder("Ship between 0 and 2 of TEE-BLK-M."),
                OrderForbidden("Fulfilling orders needs orders.fulfil_order."),
                IllegalTransition(
                    order_id="7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f",
                    from_status="pending_payment",
                    to_status="fulfilled",
                ),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def fulfil(self, request: Request, public_id: str) -> Response:
        public_id = _public_id(public_id)
        order = selectors.get_order_for(user=request.user, public_id=public_id)
        if not request.user.has_perm(FULFIL):
            raise OrderForbidden("Fulfilling orders needs orders.fulfil_order.")
        serializer = OrderFulfilInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = serializer.validated_data.get("lines")
        services.fulfil_order(
            order_id=order.pk,
            by=request.user,
            shipped=None if lines is None else {line["sku"]: line["quantity"] for line in lines},
        )
        return Response(
            order_detail_to_dict(selectors.get_order_for(user=request.user, public_id=public_id))
        )


def _public_id(value: str) -> str:
    """The order id in the URL, canonical; a malformed one names no order (404)."""
    try:
        return str(identifiers.parse_uuid(value))
    except ValueError:
        raise OrderNotFound(f"No order {value}.") from None
