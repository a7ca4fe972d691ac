"""Input and output shapes of the inventory API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from apps.inventory.models import StockMovement, StockReason, Warehouse
from ecommerce.api import fields, identifiers

# Units one stock change may move.
MAX_STOCK_CHANGE = 1_000_000
MOVEMENT_EXAMPLE: dict[str, Any] = {
    "id": 501,
    "sku": "TEE-BLK-M",
    "warehouse": "main",
    "delta": 10,
    "balance": 22,
    "reason": "restock",
    "reference": "",
    "note": "Delivery 2026-11-24",
    "actor": "manager@example.com",
    "created_at": "2026-11-24T10:15:00.123456Z",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A delivery",
            value={
                "delta": 10,
                "reason": "restock",
                "warehouse": "main",
                "note": "Delivery 2026-11-24",
            },
            request_only=True,
        ),
        OpenApiExample(
            "A stock count",
            value={"delta": -2, "reason": "adjustment", "note": "Damaged"},
            request_only=True,
        ),
    ]
)
class StockChangeInputSerializer(serializers.Serializer):
    delta = identifiers.IntegerField(min_value=-MAX_STOCK_CHANGE, max_value=MAX_STOCK_CHANGE)
    reason = fields.ChoiceField(choices=[StockReason.RESTOCK, StockReason.ADJUSTMENT])
    note = fields.CharField(required=False, allow_blank=True, max_length=255, default="")
    warehouse = fields.SlugField(
        required=False,
        allow_null=True,
        default=None,
        max_length=120,
        help_text="Warehouse slug; the default warehouse when left out.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["delta"] == 0:
            raise serializers.ValidationError({"delta": "The delta cannot be zero."})
        if attrs["reason"] == StockReason.RESTOCK and attrs["delta"] < 0:
            raise serializers.ValidationError(
                {"delta": "A restock adds units: use a positive delta."}
            )
        return attrs


@extend_schema_serializer(
    examples=[OpenApiExample("A restock", value=MOVEMENT_EXAMPLE, response_only=True)]
)
class StockMovementOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(
        slug_field="email", read_only=True, allow_null=True, help_text="Null for the system."
    )

    sku = serializers.CharField(source="variant.sku", read_only=True)
    warehouse = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = StockMovement
        fields = (
            "id",
            "sku",
            "warehouse",
            "delta",
            "balance",
            "reason",
            "reference",
            "note",
            "actor",
            "created_at",
        )
        read_only_fields = fields


# Describes, for the OpenAPI schema, the dict the stock action builds by hand.
@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "After a restock",
            value={
                "sku": "TEE-BLK-M",
                "warehouse": "main",
                "stock": 22,
                "total_stock": 30,
                "movement": MOVEMENT_EXAMPLE,
            },
            response_only=True,
        )
    ]
)
class StockChangeOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    warehouse = serializers.CharField()
    stock = serializers.IntegerField(help_text="Units in that warehouse after the change.")
    total_stock = serializers.IntegerField(help_text="Units in all warehouses.")
    movement = StockMovementOutputSerializer()


class StockLevelSerializer(serializers.Serializer):
    warehouse = serializers.CharField(source="warehouse.slug")
    quantity = serializers.IntegerField()


WAREHOUSE_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "name": "North",
    "slug": "north",
    "priority": 20,
    "is_active": True,
    "zones": ["nordics"],
    "countries": ["DK", "FI", "NO", "SE"],
}
# Shipping zones one warehouse may link.
MAX_ZONES = 100


@extend_schema_serializer(
    examples=[OpenApiExample("A warehouse", value=WAREHOUSE_EXAMPLE, response_only=True)]
)
class WarehouseSerializer(serializers.ModelSerializer):
    zones = serializers.SerializerMethodField(
        help_text="Slugs of the shipping zones it serves; empty when it serves every destination."
    )
    countries = serializers.SerializerMethodField(
        help_text="The countries of its zones (read-only); null when it serves every destination."
    )

    class Meta:
        model = Warehouse
        fields = ("id", "name", "slug", "priority", "is_active", "zones", "countries")
        read_only_fields = fields

    def get_zones(self, warehouse: Warehouse) -> list[str]:
        return sorted(zone.slug for zone in warehouse.shipping_zones.all())

    def get_countries(self, warehouse: Warehouse) -> list[str] | None:
        """The union of its zones' countries; null when it serves every destination (no zone)."""
        zones = warehouse.shipping_zones.all()
        if not zones:
            return None
        return sorted({code for zone in zones for code in zone.countries})


# The priority column is a 32-bit positive integer.
MAX_PRIORITY = 2_147_483_647


class WarehouseInputSerializer(serializers.Serializer):
    """A warehouse as staff create it; a PATCH sends only what changes."""

    name = fields.CharField(max_length=120)
    slug = fields.SlugField(max_length=120)
    priority = identifiers.IntegerField(
        min_value=0,
        max_value=MAX_PRIORITY,
        default=100,
        help_text="Allocation order: lower numbers are used first.",
    )
    is_active = fields.BooleanField(
        default=True, help_text="Inactive warehouses are never allocated from or restocked."
    )
    zones = serializers.ListField(
        child=fields.SlugField(max_length=120),
        max_length=MAX_ZONES,
        default=list,
        help_text="Slugs of the shipping zones (/api/shipping-zones) whose countries it "
        "serves, each once; empty (the default): every destination.",
    )

    def validate_zones(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A zone is listed twice.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The body once took `countries`: refuse it rather than ignore it, so an old client
        # cannot make a warehouse serve every destination without knowing.
        if isinstance(self.initial_data, Mapping) and "countries" in self.initial_data:
            raise serializers.ValidationError(
                {"countries": "Read-only: a warehouse serves the countries of its `zones`."}
            )
        return attrs
