"""Order input validation and the order's JSON shape (built by hand: it is rendered on every
order write and stored as the idempotent replay body)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN
from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus
from ecommerce.api import fields, identifiers

SKU = re.compile(SKU_PATTERN, re.ASCII)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": SKU_PATTERN, "maxLength": 64, "description": "SKU"},
            identifiers.ID_SCHEMA,
        ]
    }
)
class ProductRefField(serializers.Field):
    """A variant given by SKU (a JSON string), or a product with one variant by its numeric
    id (an integer, or digits).

    Returns the SKU, or the id written canonically, as the catalog looks products up.
    """

    default_error_messages = {"invalid": "Give a variant SKU or a product's numeric id."}

    def to_internal_value(self, data: Any) -> str:
        if identifiers.is_id(data):
            return str(identifiers.parse_id(data))
        if isinstance(data, str) and SKU.fullmatch(data):
            return data
        self.fail("invalid")
        raise AssertionError("unreachable")  # pragma: no cover  (fail() raises)

    def to_representation(self, value: str) -> str:
        return value


class OrderLineInputSerializer(serializers.Serializer):
    id = ProductRefField()
    # The bound in the schema; validate_quantity reads the setting as it is now.
    quantity = identifiers.IntegerField(min_value=1, max_value=settings.ORDER_MAX_ITEM_QUANTITY)

    def validate_quantity(self, value: int) -> int:
        if value > settings.ORDER_MAX_ITEM_QUANTITY:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.ORDER_MAX_ITEM_QUANTITY}."
            )
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two lines",
            value={
                "items": [{"id": "TEE-BLK-M", "quantity": 2}, {"id": 42, "quantity": 1}],
                "payment_token": "tok_success",
            },
            request_only=True,
        )
    ]
)
class OrderCreateInputSerializer(serializers.Serializer):
    items = OrderLineInputSerializer(
        many=True, allow_empty=False, max_length=settings.ORDER_MAX_LINES
    )
    user_id = identifiers.IdField(
        required=False, help_text="Place the order for this customer (needs the permission)."
    )
    shipping_country = fields.RegexField(
        r"^[A-Z]{2}$",
        required=False,
        allow_blank=True,
        default="",
        max_length=2,
        help_text="Destination country (ISO 3166-1 alpha-2): stock comes from the warehouses "
        "serving it. Left out, any warehouse serves.",
    )
    # Optional only in DEBUG, where the sandbox's success token stands in (see get_fields).
    payment_token = fields.CharField(required=False, max_length=255)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields_ = super().get_fields()
        fields_["payment_token"].required = not settings.DEBUG  # read now: tests change it
        return fields_

    def validate_items(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > settings.ORDER_MAX_LINES:
            raise serializers.ValidationError(
                f"An order holds at most {settings.ORDER_MAX_LINES} lines."
            )
        return value


@extend_schema_serializer(
    examples=[OpenApiExample("With a reason", value={"reason": "Ordered twice"}, request_only=True)]
)
class OrderCancelInputSerializer(serializers.Serializer):
    reason = fields.CharField(required=False, allow_blank=True, max_length=255, default="")


# The output shapes below describe, for the OpenAPI schema, the dicts that `order_to_dict`
# and `order_detail_to_dict` build by hand; tests check that the two agree key for key.
MONEY_STRING = {"help_text": "Decimal amount with two places, as a string: `19.90`."}
ORDER_EXAMPLE: dict[str, Any] = {
    "id": "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f",
    "status": "pending_payment",
    "user_id": 7,
    "currency": "EUR",
    "shipping_country": "DE",
    "subtotal": "59.70",
    "total": "59.70",
    "items": [
        {
            "sku": "TEE-BLK-M",
            "name": "Organic tee",
            "variant": "M / Black",
            "unit_price": "19.90",
            "quantity": 3,
            "line_total": "59.70",
        }
    ],
    "created_at": "2026-11-24T10:15:00.123456Z",
    "updated_at": "2026-11-24T10:15:00.123456Z",
}


class OrderItemOutputSerializer(serializers.Serializer):
    sku = serializers.CharField(help_text="The variant's SKU.")
    name = serializers.CharField(help_text="The product's name.")
    variant = serializers.CharField(help_text="The variant's name (`M / Black`), or empty.")
    unit_price = serializers.CharField(**MONEY_STRING)
    quantity = serializers.IntegerField()
    line_total = serializers.CharField(**MONEY_STRING)


@extend_schema_serializer(
    examples=[OpenApiExample("An order", value=ORDER_EXAMPLE, response_only=True)]
)
class OrderOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The order's public id.")
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    user_id = serializers.IntegerField()
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. `EUR`.")
    shipping_country = serializers.CharField(help_text="Destination country, or empty.")
    subtotal = serializers.CharField(**MONEY_STRING)
    total = serializers.CharField(**MONEY_STRING)
    items = OrderItemOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderEventOutputSerializer(serializers.Serializer):
    # `from` is a Python keyword: declared through `fields` below.
    to = serializers.ChoiceField(choices=OrderStatus.choices)
    reason = serializers.CharField()
    at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.ChoiceField(choices=OrderStatus.choices, allow_null=True),
            **super().get_fields(),
        }


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A paid order",
            value={
                **ORDER_EXAMPLE,
                "status": "paid",
                "history": [
                    {
                        "from": None,
                        "to": "pending_payment",
                        "reason": "placed",
                        "at": "2026-11-24T10:15:00.123456Z",
                    },
                    {
                        "from": "pending_payment",
                        "to": "paid",
                        "reason": "payment succeeded",
                        "at": "2026-11-24T10:15:02.654321Z",
                    },
                ],
            },
            response_only=True,
        )
    ]
)
class OrderDetailOutputSerializer(OrderOutputSerializer):
    history = OrderEventOutputSerializer(many=True, help_text="Status changes, oldest first.")


def money(value: Any) -> str:
    return f"{value:.2f}"


def item_to_dict(item: OrderItem) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "name": item.name,
        "variant": item.variant_name,
        "unit_price": money(item.unit_price),
        "quantity": item.quantity,
        "line_total": money(item.line_total),
    }


def order_to_dict(order: Order, items: Iterable[OrderItem]) -> dict[str, Any]:
    return {
        "id": str(order.public_id),
        "status": order.status,
        "user_id": order.user_id,
        "currency": order.currency,
        "shipping_country": order.shipping_country,
        "subtotal": money(order.subtotal),
        "total": money(order.total),
        "items": [item_to_dict(item) for item in items],
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": order.updated_at.isoformat().replace("+00:00", "Z"),
    }


def event_to_dict(event: OrderEvent) -> dict[str, Any]:
    return {
        "from": event.from_status or None,
        "to": event.to_status,
        "reason": event.reason,
        "at": event.created_at.isoformat().replace("+00:00", "Z"),
    }


def order_detail_to_dict(order: Order) -> dict[str, Any]:
    """The order with its history; expects `items` and `events` prefetched."""
    body = order_to_dict(order, order.items.all())
    body["history"] = [event_to_dict(event) for event in order.events.all()]
    return body


STATUSES = [status.value for status in OrderStatus]
