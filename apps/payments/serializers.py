"""Payments' API shapes: a staff refund in, refunds out."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.payments.models import Refund, RefundOrigin, RefundStatus
from ecommerce.money import format_amount


class RefundCreateInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=None,
        help_text="How much to refund, in the order's currency, as a decimal string: at most "
        "what is left to refund (captured, less refunds made or pending), with no more places "
        "than the currency has.",
    )
    reason = serializers.CharField(
        max_length=255, help_text="Why: kept with the refund and shown to staff."
    )


class RefundOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    order = serializers.UUIDField(source="order.public_id")
    amount = serializers.CharField(help_text="Decimal string with the currency's places.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(
        choices=RefundStatus.choices,
        help_text="pending: reserved, the provider has not answered yet (it is sent again "
        "until it does); succeeded; failed: the provider refused it (nothing was refunded).",
    )
    origin = serializers.ChoiceField(choices=RefundOrigin.choices)
    reason = serializers.CharField()
    requested_by = serializers.EmailField(allow_null=True, help_text="Who asked for it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def refund_example(*, origin: str = "staff", reason: str = "one lamp arrived scratched") -> Any:
    """The schema's example of a refund (`OpenApiExample`), response only."""
    from drf_spectacular.utils import OpenApiExample

    return OpenApiExample(
        "Refunded",
        value={
            "id": "0c5e2f3a-1b4d-4e6f-8a9b-7c6d5e4f3a2b",
            "order": "6f1d2c3b-4a5e-4f60-9b8a-7c6d5e4f3a21",
            "amount": "25.00",
            "currency": "EUR",
            "status": "succeeded",
            "origin": origin,
            "reason": reason,
            "requested_by": "support@example.com",
            "created_at": "2026-11-30T10:00:00.123456Z",
            "updated_at": "2026-11-30T10:00:01.654321Z",
        },
        response_only=True,
    )


def refund_to_dict(refund: Refund) -> dict[str, Any]:
    """A refund as the API returns it; `order` and `requested_by` are selected with it."""
    return {
        "id": str(refund.public_id),
        "order": str(refund.order.public_id),
        "amount": format_amount(refund.amount, refund.currency),
        "currency": refund.currency,
        "status": refund.status,
        "origin": refund.origin,
        "reason": refund.reason,
        "requested_by": refund.requested_by.email if refund.requested_by else None,
        "created_at": serializers.DateTimeField().to_representation(refund.created_at),
        "updated_at": serializers.DateTimeField().to_representation(refund.updated_at),
    }


class ReturnRefundInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=None,
        required=False,
        help_text="How much to refund, as a decimal string: at most the return's lines' share "
        "of what was paid (`refund_amount` on the return), which is the default.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        default="",
        help_text="Kept with the refund; `return <id>` when left out.",
    )
