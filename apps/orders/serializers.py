"""Order input validation and the order's JSON shape (built by hand: it is rendered on every
order write and stored as the idempotent replay body)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.orders.models import Order, OrderEvent, OrderItem, OrderStatus


class ProductRefField(serializers.Field):
    """A product given as its SKU or numeric id (a JSON string or integer)."""

    default_error_messages = {"invalid": "Give a product SKU or numeric id."}

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        value = str(data).strip()
        if not value or len(value) > 64:
            self.fail("invalid")
        return value

    def to_representation(self, value: str) -> str:
        return value


class OrderLineInputSerializer(serializers.Serializer):
    id = ProductRefField()
    quantity = serializers.IntegerField(min_value=1)

    def validate_quantity(self, value: int) -> int:
        if value > settings.ORDER_MAX_ITEM_QUANTITY:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {settings.ORDER_MAX_ITEM_QUANTITY}."
            )
        return value


class OrderCreateInputSerializer(serializers.Serializer):
    items = OrderLineInputSerializer(many=True, allow_empty=False)
    user_id = serializers.CharField(required=False, max_length=20)
    payment_token = serializers.CharField(required=False, max_length=255)

    def validate_items(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > settings.ORDER_MAX_LINES:
            raise serializers.ValidationError(
                f"An order holds at most {settings.ORDER_MAX_LINES} lines."
            )
        return value

    def validate_user_id(self, value: str) -> int:
        if not value.strip().isdigit():
            raise serializers.ValidationError("A user id is a positive integer.")
        return int(value)


class OrderCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


def money(value: Any) -> str:
    return f"{value:.2f}"


def item_to_dict(item: OrderItem) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "name": item.name,
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
