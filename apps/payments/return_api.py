"""`POST /api/orders/{order_id}/returns/{return_id}/refund`: staff refund a received return.

Served by payments (orders never moves money): the refund is reserved and sent like any
other (apps.payments.return_refunds) and, once it succeeds, the return is refunded.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.orders import selectors as orders_selectors
from apps.orders.exceptions import IllegalReturnTransition, OrderNotFound, ReturnNotFound
from apps.payments import return_refunds, selectors
from apps.payments.exceptions import (
    InvalidRefundAmount,
    NothingToRefund,
    RefundExceedsRefundable,
    ReturnRefundInProgress,
)
from apps.payments.serializers import (
    RefundOutputSerializer,
    ReturnRefundInputSerializer,
    refund_example,
    refund_to_dict,
)
from ecommerce.api import identifiers
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.schema import problems

REFUND_RETURN = "orders.refund_return"
EXAMPLE_ORDER = "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f"
EXAMPLE_RETURN = "5b0e7c2d-8f4a-4d1b-9e3c-2a1b0c9d8e7f"


def _uuid(value: str, error: type[OrderNotFound] | type[ReturnNotFound]) -> str:
    try:
        return str(identifiers.parse_uuid(value))
    except ValueError:
        raise error(f"No such id {value}.") from None


class ReturnRefundView(APIView):
    """Refund a received return: its lines' share of what was paid, or less."""

    @extend_schema(
        summary="Refund a received return (staff)",
        description=(
            "Needs `orders.refund_return`. Refunds `amount` (by default, and at most, the "
            "return's `refund_amount`: its lines' share of what was paid; shipping is not "
            "refunded) through the order's payment, within what is left to refund. 201 with "
            "the refund: `succeeded` (the return is `refunded`, the order's paid amount "
            "lowered), `failed` (the provider refused; the return stays `received`), or "
            "`pending` when the provider cannot be reached now (it is sent again, and the "
            "return follows when it succeeds)."
        ),
        parameters=[
            OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter("return_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            location_parameter("The refund, among the order's refunds."),
        ],
        request=ReturnRefundInputSerializer,
        responses={
            status.HTTP_201_CREATED: OpenApiResponse(
                RefundOutputSerializer,
                "The refund.",
                examples=[refund_example(origin="return", reason=f"return {EXAMPLE_RETURN}")],
            ),
            **problems(
                InvalidRefundAmount("EUR amounts have at most 2 decimal places."),
                OrderNotFound(f"No order {EXAMPLE_ORDER}."),
                ReturnNotFound(f"Order {EXAMPLE_ORDER} has no return {EXAMPLE_RETURN}."),
                IllegalReturnTransition(
                    return_id=EXAMPLE_RETURN, from_status="approved", to_status="refunded"
                ),
                ReturnRefundInProgress(return_id=EXAMPLE_RETURN, refund_id=EXAMPLE_ORDER),
                RefundExceedsRefundable(amount="30.00", refundable="25.00", currency="EUR"),
                NothingToRefund("Order 42 has no captured payment to refund."),
            ),
        },
    )
    def post(self, request: Request, order_id: str, return_id: str) -> Response:
        order_return = orders_selectors.get_return_for(
            user=request.user,
            order_public_id=_uuid(order_id, OrderNotFound),
            return_public_id=_uuid(return_id, ReturnNotFound),
        )
        if not request.user.has_perm(REFUND_RETURN):
            raise PermissionDenied("You may not refund returns.")
        serializer = ReturnRefundInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund = return_refunds.refund_return(
            return_id=order_return.pk,
            by=request.user,
            amount=data.get("amount"),
            reason=data["reason"],
        )
        refund = selectors.refunds_of(order_id=order_return.order_id).get(pk=refund.pk)
        headers = location("orders", order_return.order.public_id, "refunds", refund.public_id)
        return Response(refund_to_dict(refund), status=status.HTTP_201_CREATED, headers=headers)
