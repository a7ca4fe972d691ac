"""Return input validation and the return's JSON shape (built by hand, like the order's: the
API and the return's notifications show the same dict)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN
from apps.orders.models import Return, ReturnDisposition, ReturnStatus, line_refund_amount
from apps.orders.serializers import money
from ecommerce.api import fields, identifiers

ITEM_HELP = "The order line, by its `sku` as the order shows it."


def _timestamp(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


class ReturnLineInputSerializer(serializers.Serializer):
    item = fields.RegexField(rf"^{SKU_PATTERN}$", max_length=64, help_text=ITEM_HELP)
    quantity = identifiers.IntegerField(
        min_value=1,
        max_value=settings.ORDER_MAX_ITEM_QUANTITY,
        help_text="Units to send back: at most what was bought less what other returns "
        "that were not rejected hold.",
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two tees back",
            value={"lines": [{"item": "TEE-BLK-M", "quantity": 2}], "reason": "Too small"},
            request_only=True,
        )
    ]
)
class ReturnCreateInputSerializer(serializers.Serializer):
    lines = ReturnLineInputSerializer(
        many=True, allow_empty=False, max_length=settings.ORDER_MAX_LINES
    )
    reason = fields.CharField(max_length=500, help_text="Why the goods go back.")

    def validate_lines(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        skus = [line["item"] for line in value]
        twice = sorted({sku for sku in skus if skus.count(sku) > 1})
        if twice:
            raise serializers.ValidationError(
                f"Give each item once: {', '.join(twice)} is listed more than once."
            )
        return value


class ReturnNoteInputSerializer(serializers.Serializer):
    note = fields.CharField(
        required=False, allow_blank=True, max_length=500, default="", help_text="For staff."
    )


class ReturnRejectInputSerializer(serializers.Serializer):
    note = fields.CharField(max_length=500, help_text="Why, as the customer is told.")


class ReturnReceiptLineInputSerializer(serializers.Serializer):
    item = fields.RegexField(rf"^{SKU_PATTERN}$", max_length=64, help_text=ITEM_HELP)
    restock_to = fields.SlugField(
        required=False,
        max_length=120,
        help_text="Slug of the active warehouse the units go back into.",
    )
    write_off_reason = fields.CharField(
        required=False,
        max_length=255,
        help_text="Instead of a warehouse: why the units are written off (no stock moves).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("restock_to")) == bool((attrs.get("write_off_reason") or "").strip()):
            raise serializers.ValidationError(
                f"Item {attrs['item']}: give either restock_to (a warehouse) or "
                "write_off_reason, not both and not neither."
            )
        return attrs


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Restock one line, write off the other",
            value={
                "lines": [
                    {"item": "TEE-BLK-M", "restock_to": "north"},
                    {"item": "MUG-01", "write_off_reason": "Broken in transit"},
                ]
            },
            request_only=True,
        )
    ]
)
class ReturnReceiveInputSerializer(serializers.Serializer):
    lines = ReturnReceiptLineInputSerializer(
        many=True,
        allow_empty=False,
        max_length=settings.ORDER_MAX_LINES,
        help_text="One entry per line of the return.",
    )
    note = fields.CharField(required=False, allow_blank=True, max_length=500, default="")


# --- Output --------------------------------------------------------------------------------

RETURN_EXAMPLE: dict[str, Any] = {
    "id": "5b0e7c2d-8f4a-4d1b-9e3c-2a1b0c9d8e7f",
    "order_id": "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f",
    "status": "received",
    "reason": "Too small",
    "staff_note": "",
    "currency": "EUR",
    "lines": [
        {
            "item": "TEE-BLK-M",
            "name": "Organic tee",
            "variant": "M / Black",
            "quantity": 2,
            "refund_amount": "35.82",
            "disposition": "restock",
            "warehouse": "north",
            "write_off_reason": "",
        }
    ],
    "refund_amount": "35.82",
    "refunded_amount": None,
    "created_at": "2026-11-28T09:00:00.123456Z",
    "updated_at": "2026-11-29T14:30:00.654321Z",
}


class ReturnLineOutputSerializer(serializers.Serializer):
    item = serializers.CharField(help_text=ITEM_HELP)
    name = serializers.CharField()
    variant = serializers.CharField()
    quantity = serializers.IntegerField()
    refund_amount = serializers.CharField(
        help_text="These units' share of the line's total (after discounts, tax included)."
    )
    disposition = serializers.ChoiceField(
        choices=[("", "Not received yet"), *ReturnDisposition.choices],
        help_text="Empty until received: `restock` or `write_off`.",
    )
    warehouse = serializers.CharField(
        allow_null=True, help_text="Slug of the warehouse restocked units went to."
    )
    write_off_reason = serializers.CharField()


@extend_schema_serializer(
    examples=[OpenApiExample("A received return", value=RETURN_EXAMPLE, response_only=True)]
)
class ReturnOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The return's public id.")
    order_id = serializers.UUIDField(help_text="The order's public id.")
    status = serializers.ChoiceField(choices=ReturnStatus.choices)
    reason = serializers.CharField()
    staff_note = serializers.CharField(help_text="Staff's note; the reason of a rejection.")
    currency = serializers.CharField()
    lines = ReturnLineOutputSerializer(many=True)
    refund_amount = serializers.CharField(
        help_text="The refund this return is due by default: its lines' shares."
    )
    refunded_amount = serializers.CharField(
        allow_null=True, help_text="What was refunded, once refunded."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def return_to_dict(order_return: Return) -> dict[str, Any]:
    """The return as the API and its notifications show it; expects `order` loaded and
    `lines` (with `item` and `warehouse`) prefetched."""
    currency = order_return.order.currency
    lines = []
    total = None
    for line in order_return.lines.all():
        share = line_refund_amount(line.item, line.quantity)
        total = share if total is None else total + share
        lines.append(
            {
                "item": line.item.sku,
                "name": line.item.name,
                "variant": line.item.variant_name,
                "quantity": line.quantity,
                "refund_amount": money(share, currency),
                "disposition": line.disposition,
                "warehouse": line.warehouse.slug if line.warehouse is not None else None,
                "write_off_reason": line.write_off_reason,
            }
        )
    return {
        "id": str(order_return.public_id),
        "order_id": str(order_return.order.public_id),
        "status": order_return.status,
        "reason": order_return.reason,
        "staff_note": order_return.staff_note,
        "currency": currency,
        "lines": lines,
        "refund_amount": money(total, currency) if total is not None else "0.00",
        "refunded_amount": (
            money(order_return.refunded_amount, currency)
            if order_return.refunded_amount is not None
            else None
        ),
        "created_at": _timestamp(order_return.created_at),
        "updated_at": _timestamp(order_return.updated_at),
    }
