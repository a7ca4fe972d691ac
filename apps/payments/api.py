"""Payments over HTTP: the endpoint payment providers send their webhooks to, and staff
refunds of an order (`/api/orders/{public_id}/refunds`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.orders import selectors as orders_selectors
from apps.orders.exceptions import OrderNotFound
from apps.payments import selectors, services, webhooks
from apps.payments.exceptions import (
    InvalidRefundAmount,
    NothingToRefund,
    RefundExceedsRefundable,
    RefundNotFound,
    RefundRequestKeyReused,
    WebhookPayloadInvalid,
)
from apps.payments.models import RefundOrigin
from apps.payments.serializers import (
    RefundCreateInputSerializer,
    RefundOutputSerializer,
    refund_example,
    refund_to_dict,
)
from ecommerce.api import identifiers
from ecommerce.api.filters import OrderingFilter
from ecommerce.api.idempotency import HEADER, REPLAYED_HEADER, idempotency_key_from
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.schema import problems

REFUND = "payments.refund_payment"
VIEW_REFUNDS = "payments.view_refund"


@extend_schema(exclude=True)
class ProviderWebhookView(APIView):
    """`POST /api/payments/webhooks/<provider>`: one signed event from a payment provider.

    The signature is the authentication (`apps.payments.webhooks`), so there is no
    authentication class and no CSRF check (DRF exempts its views; CSRF guards cookie
    sessions, which a provider has none of). Not rate limited: every delivery that passes
    the signature is the provider's, which sends in bursts from a few addresses, and a
    refused delivery would only come back later; an unsigned flood costs one HMAC per
    request and stores nothing. Left out of the OpenAPI schema: it is a contract with the
    provider (its event format and signature), not with API clients.

    200 {"id", "type", "outcome", "duplicate"} for a stored event (new or repeated); 400
    problem+json for a bad signature, timestamp or body; 404 for an unknown provider; 503
    `provider_event_deferred` for an event that cannot be applied yet (the provider
    retries it).
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    def post(self, request: Request, provider: str) -> Response:
        header = webhooks.signature_header(provider)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # Checked before reading (a declared length) and after (a chunked body has none).
        if length > webhooks.MAX_BODY_BYTES:
            raise WebhookPayloadInvalid(f"The body is larger than {webhooks.MAX_BODY_BYTES} bytes.")
        body = request.body
        if len(body) > webhooks.MAX_BODY_BYTES:
            raise WebhookPayloadInvalid(f"The body is larger than {webhooks.MAX_BODY_BYTES} bytes.")
        receipt = webhooks.receive_event(
            provider=provider, body=body, signature=request.META.get(header)
        )
        event = receipt.event
        return Response(
            {
                "id": event.event_id,
                "type": event.type,
                "outcome": event.outcome,
                "duplicate": receipt.duplicate,
            },
            status=status.HTTP_200_OK,
        )


class _RefundPermission(BasePermission):
    """Staff holding `payments.refund_payment` refund (support and admin, by migration
    payments.0007); reading the refunds takes `payments.view_refund`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return bool(user.has_perm(REFUND if request.method == "POST" else VIEW_REFUNDS))


def _order_id(user: Any, public_id: str) -> int:
    try:
        canonical = str(identifiers.parse_uuid(public_id))
    except ValueError:
        raise OrderNotFound(f"No order {public_id}.") from None
    return orders_selectors.get_order_for(user=user, public_id=canonical).pk


class OrderRefundsView(generics.GenericAPIView):
    """`/api/orders/{public_id}/refunds`: an order's refunds; staff refund part or all of
    what was captured, in as many steps as they like."""

    permission_classes = [_RefundPermission]
    # For the schema only: refunds are rendered by hand (refund_to_dict).
    serializer_class = RefundOutputSerializer
    filter_backends = (OrderingFilter,)
    ordering_fields = ("created_at", "amount")

    @extend_schema(
        summary="List an order's refunds",
        description="Oldest first: staff refunds, the refund of a cancelled paid order, "
        "compensations, and refunds made at the provider.",
        responses={status.HTTP_200_OK: RefundOutputSerializer(many=True)},
        examples=[refund_example()],
    )
    def get(self, request: Request, public_id: str) -> Response:
        order_id = _order_id(request.user, public_id)
        page = self.paginate_queryset(self.filter_queryset(selectors.refunds_of(order_id=order_id)))
        return self.get_paginated_response([refund_to_dict(r) for r in page or []])

    @extend_schema(
        summary="Refund part or all of an order's payment",
        description=(
            "Reserves `amount` against what is left to refund (captured, less refunds made "
            "or pending), so two refunds at once never exceed the capture, then asks the "
            "payment provider. 201 with the refund: `succeeded`, `failed` (the provider "
            "refused: nothing was refunded), or `pending` when the provider cannot be "
            "reached now (it stays reserved and is sent again until it answers). When "
            "nothing paid is left, a paid order ends `refunded` and its stock comes back. "
            "With an `Idempotency-Key`, a retry returns the first refund "
            "(`Idempotent-Replayed: true`) and never refunds twice."
        ),
        request=RefundCreateInputSerializer,
        parameters=[
            OpenApiParameter(
                HEADER,
                str,
                OpenApiParameter.HEADER,
                description="1 to 255 printable ASCII characters; a UUID is ideal.",
            ),
            OpenApiParameter(
                REPLAYED_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[201],
                enum=["true"],
                description="Present when this is the refund an earlier request made.",
            ),
            location_parameter("The refund."),
        ],
        responses={
            status.HTTP_201_CREATED: OpenApiResponse(
                RefundOutputSerializer, "The refund.", examples=[refund_example()]
            ),
            **problems(
                InvalidRefundAmount("EUR amounts have at most 2 decimal places."),
                NothingToRefund("Order 42 has no captured payment to refund."),
                RefundExceedsRefundable(amount="30.00", refundable="25.00", currency="EUR"),
                RefundRequestKeyReused(key="3f1c9e0a-refund-1"),
            ),
        },
    )
    def post(self, request: Request, public_id: str) -> Response:
        key = idempotency_key_from(request)
        order_id = _order_id(request.user, public_id)
        serializer = RefundCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        replayed = (
            bool(key) and selectors.refunds_of(order_id=order_id).filter(request_key=key).exists()
        )
        refund = services.refund(
            order_id=order_id,
            amount=data["amount"],
            by=request.user,
            reason=data["reason"],
            origin=RefundOrigin.STAFF,
            request_key=key or "",
        )
        refund = selectors.refunds_of(order_id=order_id).get(pk=refund.pk)
        headers = location("orders", refund.order.public_id, "refunds", refund.public_id)
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return Response(refund_to_dict(refund), status=status.HTTP_201_CREATED, headers=headers)


class OrderRefundView(APIView):
    """`/api/orders/{public_id}/refunds/{refund_id}`: one refund of an order."""

    permission_classes = [_RefundPermission]

    @extend_schema(
        summary="Read one refund of an order",
        responses=RefundOutputSerializer,
        examples=[refund_example()],
    )
    def get(self, request: Request, public_id: str, refund_id: str) -> Response:
        order_id = _order_id(request.user, public_id)
        try:
            canonical = str(identifiers.parse_uuid(refund_id))
        except ValueError:
            raise RefundNotFound(f"No refund {refund_id}.") from None
        refund = selectors.refunds_of(order_id=order_id).filter(public_id=canonical).first()
        if refund is None:
            raise RefundNotFound(f"No refund {refund_id} of this order.")
        return Response(refund_to_dict(refund))
