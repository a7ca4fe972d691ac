"""Order input validation and the order's JSON shape (built by hand: it is rendered on every
order write and stored as the idempotent replay body)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN
from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus
from ecommerce.api import fields, identifiers
from ecommerce.money import format_amount, is_exact

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
class OrderFulfilLineInputSerializer(serializers.Serializer):
    sku = serializers.RegexField(SKU_PATTERN, max_length=64)
    quantity = identifiers.IntegerField(min_value=0, max_value=settings.ORDER_MAX_ITEM_QUANTITY)


class OrderFulfilInputSerializer(serializers.Serializer):
    lines = OrderFulfilLineInputSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=settings.ORDER_MAX_LINES,
        help_text="The units that ship, by SKU; lines not named ship none. Only an "
        "authorized order (capture at fulfilment) ships in part: what ships is captured, "
        "the rest of the authorization released and its stock returned. Absent: all.",
    )

    def validate_lines(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        skus = [line["sku"] for line in value]
        if len(set(skus)) != len(skus):
            raise serializers.ValidationError("Name each SKU once.")
        return value


class OrderCancelInputSerializer(serializers.Serializer):
    reason = fields.CharField(required=False, allow_blank=True, max_length=255, default="")


# The output shapes below describe, for the OpenAPI schema, the dicts that `order_to_dict`
# and `order_detail_to_dict` build by hand; tests check that the two agree key for key.
MONEY_STRING = {"help_text": "Decimal amount with two places, as a string: `19.90`."}
RATE_STRING = {"help_text": "Tax rate in percent, as a string without trailing zeros: `19`, `7.7`."}
ADDRESS_EXAMPLE: dict[str, str] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "",
    "street_address_1": "Unter den Linden 1",
    "street_address_2": "",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "country_area": "",
    "phone": "+49 30 1234567",
}
ORDER_EXAMPLE: dict[str, Any] = {
    "id": "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f",
    "status": "pending_payment",
    "user_id": 7,
    "currency": "EUR",
    "shipping_country": "DE",
    "shipping_address": ADDRESS_EXAMPLE,
    "billing_address": ADDRESS_EXAMPLE,
    "prices_include_tax": True,
    "subtotal": "59.70",
    "discount_total": "5.97",
    "shipping": {"method": "DHL Paket", "price": "4.90", "tax": "0.78"},
    "tax_total": "9.36",
    "total_net": "49.27",
    "total": "58.63",
    "amount_paid": "0.00",
    "next_action": None,
    "voucher_code": "WELCOME10",
    "tax_breakdown": [{"rate": "19", "net": "49.27", "tax": "9.36"}],
    "items": [
        {
            "sku": "TEE-BLK-M",
            "name": "Organic tee",
            "variant": "M / Black",
            "unit_price": "19.90",
            "quantity": 3,
            "discount": "5.97",
            "promotion_name": "",
            "tax_rate": "19",
            "tax": "8.58",
            "total_net": "45.15",
            "line_total": "53.73",
        }
    ],
    "expires_at": "2026-11-24T10:30:00.123456Z",
    "created_at": "2026-11-24T10:15:00.123456Z",
    "updated_at": "2026-11-24T10:15:00.123456Z",
}


class OrderItemOutputSerializer(serializers.Serializer):
    sku = serializers.CharField(help_text="The variant's SKU.")
    name = serializers.CharField(help_text="The product's name.")
    variant = serializers.CharField(help_text="The variant's name (`M / Black`), or empty.")
    unit_price = serializers.CharField(
        help_text="Price of one unit as entered in the catalog: tax included when the "
        "order's `prices_include_tax`, else without. Decimal string: `19.90`."
    )
    quantity = serializers.IntegerField()
    discount = serializers.CharField(
        help_text="Promotion and voucher discount on the line. Decimal string: `5.97`."
    )
    promotion_name = serializers.CharField(
        help_text="The automatic promotion applied to the line, or empty."
    )
    tax_rate = serializers.CharField(**RATE_STRING)
    tax = serializers.CharField(**MONEY_STRING)
    total_net = serializers.CharField(
        help_text="The line after discounts, without tax. Decimal string: `45.15`."
    )
    line_total = serializers.CharField(
        help_text="What the line costs after discounts, tax included (`total_net` + `tax`). "
        "Decimal string: `53.73`."
    )


class OrderAddressOutputSerializer(serializers.Serializer):
    """An address as the order keeps it; an empty object when none was given."""

    first_name = serializers.CharField(required=False)
    last_name = serializers.CharField(required=False)
    company = serializers.CharField(required=False)
    street_address_1 = serializers.CharField(required=False)
    street_address_2 = serializers.CharField(required=False)
    city = serializers.CharField(required=False)
    postal_code = serializers.CharField(required=False)
    country = serializers.CharField(required=False, help_text="ISO 3166-1 alpha-2 code.")
    country_area = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)


class OrderShippingOutputSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="The shipping method's name, or empty: none.")
    price = serializers.CharField(
        help_text="Shipping as entered (gross or net like the prices), before any discount. "
        "Decimal string: `4.90`."
    )
    tax = serializers.CharField(**MONEY_STRING)


class OrderTaxLineOutputSerializer(serializers.Serializer):
    rate = serializers.CharField(**RATE_STRING)
    net = serializers.CharField(**MONEY_STRING)
    tax = serializers.CharField(**MONEY_STRING)


class OrderNextActionOutputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["redirect"])
    url = serializers.URLField(help_text="Send the customer there (3-D Secure or the like).")


@extend_schema_serializer(
    examples=[OpenApiExample("An order", value=ORDER_EXAMPLE, response_only=True)]
)
class OrderOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The order's public id.")
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    user_id = serializers.IntegerField()
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. `EUR`.")
    shipping_country = serializers.CharField(help_text="Destination country, or empty.")
    shipping_address = OrderAddressOutputSerializer()
    billing_address = OrderAddressOutputSerializer()
    prices_include_tax = serializers.BooleanField(
        help_text="Whether unit prices and the shipping price were entered with tax included."
    )
    subtotal = serializers.CharField(
        help_text="The lines before discounts, as entered (see `prices_include_tax`). "
        "Decimal string: `59.70`."
    )
    discount_total = serializers.CharField(
        help_text="Promotions and voucher, on the lines and on shipping. Decimal string."
    )
    shipping = OrderShippingOutputSerializer()
    tax_total = serializers.CharField(help_text="Tax on the lines and shipping. Decimal string.")
    total_net = serializers.CharField(help_text="`total` without tax. Decimal string.")
    total = serializers.CharField(
        help_text="What is charged, tax included: subtotal + shipping price - discounts, "
        "plus the tax when prices are net. Decimal string: `58.63`."
    )
    amount_paid = serializers.CharField(
        help_text="What was paid: captured, net of refunds. `0.00` until the payment is "
        "captured (at placement, or at fulfilment for an authorized order: what shipped). "
        "Decimal string."
    )
    next_action = OrderNextActionOutputSerializer(
        allow_null=True,
        help_text="While `status` is `action_required`: what the customer must do for the "
        "payment to go on (open `url`, the provider's page); null otherwise.",
    )
    voucher_code = serializers.CharField(help_text="The voucher applied, or empty.")
    tax_breakdown = OrderTaxLineOutputSerializer(
        many=True, help_text="Tax per rate over the lines and shipping."
    )
    items = OrderItemOutputSerializer(many=True)
    expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Unpaid by then (or, `authorized`, unfulfilled by then), the order expires "
        "and its items are released. Null for "
        "orders placed before the hold was recorded.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderEventOutputSerializer(serializers.Serializer):
    # `from` is a Python keyword: declared through `fields` below.
    to = serializers.ChoiceField(choices=OrderStatus.choices)
    reason = serializers.CharField()
    return_id = serializers.UUIDField(
        allow_null=True,
        help_text="The return whose step this is (the order's status stays: `from` = `to`); "
        "null for a status change.",
    )
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
                        "return_id": None,
                        "at": "2026-11-24T10:15:00.123456Z",
                    },
                    {
                        "from": "pending_payment",
                        "to": "paid",
                        "reason": "payment succeeded",
                        "return_id": None,
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


def money(value: Decimal, currency: str) -> str:
    """An amount with its currency's places ("1200" yen, "9.90" euros); a row stored before
    prices were held to their currency shows what it holds."""
    if is_exact(value, currency):
        return format_amount(value, currency)
    return f"{value:.2f}"


def percent(value: Any) -> str:
    """A tax rate as text without trailing zeros: "19", "7.7", "0"."""
    return format(Decimal(str(value)).normalize(), "f")


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def item_to_dict(item: OrderItem, currency: str) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "name": item.name,
        "variant": item.variant_name,
        "unit_price": money(item.unit_price, currency),
        "quantity": item.quantity,
        "discount": money(item.discount, currency),
        "promotion_name": item.promotion_name,
        "tax_rate": percent(item.tax_rate),
        "tax": money(item.tax, currency),
        "total_net": money(item.total_net, currency),
        "line_total": money(item.line_total, currency),
    }


def order_to_dict(order: Order, items: Iterable[OrderItem]) -> dict[str, Any]:
    """The order as the API, its idempotent replay, and notifications show it.

    Never the buyer's email or the payment token: webhooks carry this to the buyer's own
    endpoints, and the API answers with it.
    """
    return {
        "id": str(order.public_id),
        "status": order.status,
        "user_id": order.user_id,
        "currency": order.currency,
        "shipping_country": order.shipping_country,
        "shipping_address": dict(order.shipping_address or {}),
        "billing_address": dict(order.billing_address or {}),
        "prices_include_tax": order.prices_include_tax,
        "subtotal": money(order.subtotal, order.currency),
        "discount_total": money(order.discount_total, order.currency),
        "shipping": {
            "method": order.shipping_method_name,
            "price": money(order.shipping_price, order.currency),
            "tax": money(order.shipping_tax, order.currency),
        },
        "tax_total": money(order.tax_total, order.currency),
        "total_net": money(order.total_net, order.currency),
        "total": money(order.total, order.currency),
        "amount_paid": money(order.amount_paid, order.currency),
        "next_action": dict(order.next_action) if order.next_action else None,
        "voucher_code": order.voucher_code,
        "tax_breakdown": [dict(row) for row in order.tax_breakdown or []],
        "items": [item_to_dict(item, order.currency) for item in items],
        "expires_at": _timestamp(order.expires_at),
        "created_at": _timestamp(order.created_at),
        "updated_at": _timestamp(order.updated_at),
    }


def event_to_dict(event: OrderEvent) -> dict[str, Any]:
    return {
        "from": event.from_status or None,
        "to": event.to_status,
        "reason": event.reason,
        "return_id": str(event.order_return.public_id) if event.order_return else None,
        "at": _timestamp(event.created_at),
    }


def order_detail_to_dict(order: Order) -> dict[str, Any]:
    """The order with its history; expects `items` and `events__order_return` prefetched."""
    body = order_to_dict(order, order.items.all())
    body["history"] = [event_to_dict(event) for event in order.events.all()]
    return body


STATUSES = [status.value for status in OrderStatus]
