"""Return endpoints under an order: the customer asks and follows; staff approve, reject and
receive (the refund is the payments app's: `POST .../returns/{return_id}/refund`)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.inventory.exceptions import UnknownWarehouse
from apps.orders import returns, selectors
from apps.orders.exceptions import (
    IllegalReturnTransition,
    InvalidReturn,
    OrderNotFound,
    OrderNotReturnable,
    ReturnNotFound,
    ReturnQuantityExceeded,
)
from apps.orders.models import Return
from apps.orders.return_serializers import (
    ReturnCreateInputSerializer,
    ReturnNoteInputSerializer,
    ReturnOutputSerializer,
    ReturnReceiveInputSerializer,
    ReturnRejectInputSerializer,
    return_to_dict,
)
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.schema import problems

EXAMPLE_ORDER = "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f"
EXAMPLE_RETURN = "5b0e7c2d-8f4a-4d1b-9e3c-2a1b0c9d8e7f"
ORDER_PARAMETER = OpenApiParameter(
    "order_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The order's public id."
)
RETURN_PARAMETER = OpenApiParameter(
    "return_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The return's public id."
)
NOT_FOUND = (
    OrderNotFound(f"No order {EXAMPLE_ORDER}."),
    ReturnNotFound(f"Order {EXAMPLE_ORDER} has no return {EXAMPLE_RETURN}."),
)


def transition_problem(to_status: str) -> IllegalReturnTransition:
    return IllegalReturnTransition(
        return_id=EXAMPLE_RETURN, from_status="rejected", to_status=to_status
    )


def uuid_or_404(value: str, error: type[OrderNotFound] | type[ReturnNotFound]) -> str:
    """A public id from the URL, canonical; a malformed one names nothing (404)."""
    try:
        return str(identifiers.parse_uuid(value))
    except ValueError:
        raise error(f"No such id {value}.") from None


@extend_schema(parameters=[ORDER_PARAMETER])
class ReturnViewSet(viewsets.GenericViewSet):
    """`/api/orders/{order_id}/returns`: the returns of an order the caller sees (their own;
    support and admins: every order). Anyone else's order is 404, never 403."""

    lookup_field = "return_id"
    lookup_url_kwarg = "return_id"
    lookup_value_regex = identifiers.UUID_PATTERN
    serializer_class = ReturnOutputSerializer  # for the schema: rendered by hand
    queryset = Return.objects.none()
    filter_backends = (OrderingFilter,)
    ordering_fields = ("created_at",)

    def _order_public_id(self) -> str:
        return uuid_or_404(self.kwargs["order_id"], OrderNotFound)

    def _return(self) -> Return:
        return selectors.get_return_for(
            user=self.request.user,
            order_public_id=self._order_public_id(),
            return_public_id=uuid_or_404(self.kwargs["return_id"], ReturnNotFound),
        )

    def get_queryset(self) -> QuerySet[Return]:
        order = selectors.get_order_for(user=self.request.user, public_id=self._order_public_id())
        return selectors.returns_of(order=order)

    def _require(self, permission: str) -> None:
        if not self.request.user.has_perm(permission):
            raise PermissionDenied("You may not change returns.")

    def _answer(
        self,
        order_return: Return,
        code: int = status.HTTP_200_OK,
        headers: dict[str, str] | None = None,
    ) -> Response:
        fresh = selectors.returns_of(order=order_return.order).get(pk=order_return.pk)
        return Response(return_to_dict(fresh), status=code, headers=headers)

    @extend_schema(summary="List an order's returns", responses={200: ReturnOutputSerializer})
    def list(self, request: Request, order_id: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([return_to_dict(r) for r in page])

    @extend_schema(
        summary="Ask to return some units of a fulfilled order",
        description=(
            "Each line names an order line by its `sku` and how many units go back: at most "
            "what was bought less what the order's other returns (unless rejected) hold. "
            "Only fulfilled orders take returns; a paid order not yet shipped is cancelled "
            "instead."
        ),
        request=ReturnCreateInputSerializer,
        parameters=[location_parameter("The return.")],
        responses={
            status.HTTP_201_CREATED: OpenApiResponse(ReturnOutputSerializer, "The return."),
            **problems(
                InvalidReturn(f"Order {EXAMPLE_ORDER} has no item MUG-01."),
                *NOT_FOUND[:1],
                OrderNotReturnable(order_id=EXAMPLE_ORDER, status="paid"),
                ReturnQuantityExceeded(lines={"TEE-BLK-M": {"requested": 3, "returnable": 1}}),
            ),
        },
    )
    def create(self, request: Request, order_id: str) -> Response:
        order = selectors.get_order_for(user=request.user, public_id=self._order_public_id())
        serializer = ReturnCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order_return = returns.request_return(
            order_id=order.pk,
            lines=[
                returns.ReturnLineRequest(line["item"], line["quantity"]) for line in data["lines"]
            ],
            reason=data["reason"],
            by=request.user,
        )
        return self._answer(
            order_return,
            status.HTTP_201_CREATED,
            headers=location("orders", order.public_id, "returns", order_return.public_id),
        )

    @extend_schema(
        summary="Read a return",
        parameters=[RETURN_PARAMETER],
        responses={200: ReturnOutputSerializer, **problems(*NOT_FOUND)},
    )
    def retrieve(self, request: Request, order_id: str, return_id: str) -> Response:
        return Response(return_to_dict(self._return()))

    @extend_schema(
        summary="Approve a requested return (staff)",
        description="Needs `orders.approve_return`. The customer is emailed.",
        parameters=[RETURN_PARAMETER],
        request=ReturnNoteInputSerializer,
        responses={
            200: ReturnOutputSerializer,
            **problems(*NOT_FOUND, transition_problem("approved")),
        },
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, order_id: str, return_id: str) -> Response:
        order_return = self._return()
        self._require("orders.approve_return")
        serializer = ReturnNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        returns.approve_return(
            return_id=order_return.pk, by=request.user, note=serializer.validated_data["note"]
        )
        return self._answer(order_return)

    @extend_schema(
        summary="Reject a requested or approved return (staff)",
        description="Needs `orders.approve_return`. Its units become returnable again; the "
        "customer is emailed the note.",
        parameters=[RETURN_PARAMETER],
        request=ReturnRejectInputSerializer,
        responses={
            200: ReturnOutputSerializer,
            **problems(
                InvalidReturn("A reason for the rejection is required."),
                *NOT_FOUND,
                transition_problem("rejected"),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, order_id: str, return_id: str) -> Response:
        order_return = self._return()
        self._require("orders.approve_return")
        serializer = ReturnRejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        returns.reject_return(
            return_id=order_return.pk, by=request.user, note=serializer.validated_data["note"]
        )
        return self._answer(order_return)

    @extend_schema(
        summary="Receive an approved return's goods (staff)",
        description=(
            "Needs `orders.receive_return`. One entry per line: `restock_to` a warehouse "
            "(a stock ledger row with reason `return`) or `write_off_reason` (no stock moves)."
        ),
        parameters=[RETURN_PARAMETER],
        request=ReturnReceiveInputSerializer,
        responses={
            200: ReturnOutputSerializer,
            **problems(
                InvalidReturn("Say where every item goes: nothing given for MUG-01."),
                UnknownWarehouse(warehouse="north"),
                *NOT_FOUND,
                transition_problem("received"),
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, order_id: str, return_id: str) -> Response:
        order_return = self._return()
        self._require("orders.receive_return")
        serializer = ReturnReceiveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        returns.receive_return(
            return_id=order_return.pk,
            receipts=[
                returns.LineReceipt(
                    line["item"],
                    warehouse=line.get("restock_to", ""),
                    write_off_reason=line.get("write_off_reason", ""),
                )
                for line in data["lines"]
            ],
            by=request.user,
            note=data["note"],
        )
        return self._answer(order_return)
