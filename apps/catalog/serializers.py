"""Input and output shapes of the catalog API. Money is a decimal string with its currency."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN, Category, Product, StockMovement, StockReason
from ecommerce.api import fields, identifiers

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,120}", re.ASCII)
# Units one product may hold, and one stock change may move: the column is a 32-bit integer.
MAX_STOCK_CHANGE = 1_000_000
MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0.01")}
# What a price accepts, as the schema states it: 0.01 up to 10 digits before the point.
MONEY_PATTERN = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,9}(\.[0-9]{1,2})?)$"


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": MONEY_PATTERN, "example": "19.90"}
)
class MoneyField(serializers.DecimalField):
    """A positive amount with at most two decimal places, as a string: `19.90`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**MONEY, **kwargs})


# Examples for the OpenAPI schema.
PRODUCT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "sku": "TEE-BLK-M",
    "name": "Black tee, M",
    "description": "Organic cotton.",
    "price": "19.90",
    "currency": "EUR",
    "category": {"id": 3, "slug": "tees", "name": "Tees"},
    "stock": 12,
    "in_stock": True,
    "is_active": True,
    "created_at": "2026-11-24T10:15:00.123456Z",
    "updated_at": "2026-11-24T10:15:00.123456Z",
}
MOVEMENT_EXAMPLE: dict[str, Any] = {
    "id": 501,
    "delta": 10,
    "balance": 22,
    "reason": "restock",
    "reference": "",
    "note": "Delivery 2026-11-24",
    "actor": "manager@example.com",
    "created_at": "2026-11-24T10:15:00.123456Z",
}
CATEGORY_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "name": "Tees",
    "slug": "tees",
    "is_active": True,
    "children": [
        {"id": 4, "name": "Long sleeve", "slug": "long-sleeve", "is_active": True, "children": []}
    ],
}


class CategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "slug", "name")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A product",
            value={
                **{key: PRODUCT_EXAMPLE[key] for key in ("id", "sku", "name", "price", "currency")},
                "category": "tees",
                "stock": 12,
                "in_stock": True,
            },
            response_only=True,
        )
    ]
)
class ProductListOutputSerializer(serializers.ModelSerializer):
    """The lean list row."""

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = ("id", "sku", "name", "price", "currency", "category", "stock", "in_stock")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[OpenApiExample("A product", value=PRODUCT_EXAMPLE, response_only=True)]
)
class ProductDetailOutputSerializer(serializers.ModelSerializer):
    category = CategoryRefSerializer(read_only=True, allow_null=True)
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = (
            "id",
            "sku",
            "name",
            "description",
            "price",
            "currency",
            "category",
            "stock",
            "in_stock",
            "is_active",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 120},
            identifiers.ID_SCHEMA,
        ],
        "description": "A category slug or id.",
    }
)
class CategoryLookupField(serializers.Field):
    """A category given by slug or numeric id."""

    default_error_messages = {
        "invalid": "Give a category slug or numeric id.",
        "unknown": "Unknown category: {value}.",
    }

    def to_internal_value(self, data: Any) -> Category:
        lookup: dict[str, Any]
        if identifiers.is_id(data):
            lookup = {"pk": identifiers.parse_id(data)}
        elif isinstance(data, str) and SLUG.fullmatch(data):
            lookup = {"slug": data}
        else:
            self.fail("invalid")
        category = Category.objects.filter(**lookup).first()
        if category is None:
            self.fail("unknown", value=data)
        return category

    def to_representation(self, value: Category) -> str:
        return value.slug


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A new product",
            value={
                "sku": "TEE-BLK-M",
                "name": "Black tee, M",
                "price": "19.90",
                "category": "tees",
                "stock": 12,
            },
            request_only=True,
        )
    ]
)
class ProductCreateInputSerializer(serializers.Serializer):
    sku = fields.RegexField(SKU_PATTERN, max_length=64)
    name = fields.CharField(max_length=200)
    description = fields.CharField(required=False, allow_blank=True, default="")
    price = MoneyField()
    category = CategoryLookupField(required=False, allow_null=True, default=None)
    is_active = fields.BooleanField(required=False, default=True)
    stock = identifiers.IntegerField(
        required=False, min_value=0, max_value=MAX_STOCK_CHANGE, default=0
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Every field (PUT); PATCH takes any of them",
            value={
                "name": "Black tee, M",
                "description": "Organic cotton.",
                "price": "17.90",
                "category": "tees",
                "is_active": True,
            },
            request_only=True,
        )
    ]
)
class ProductUpdateInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=200)
    description = fields.CharField(allow_blank=True)
    price = MoneyField()
    category = CategoryLookupField(allow_null=True)
    is_active = fields.BooleanField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A delivery",
            value={"delta": 10, "reason": "restock", "note": "Delivery 2026-11-24"},
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

    class Meta:
        model = StockMovement
        fields = ("id", "delta", "balance", "reason", "reference", "note", "actor", "created_at")
        read_only_fields = fields


# Describes, for the OpenAPI schema, the dict the stock action builds by hand.
@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "After a restock",
            value={"sku": "TEE-BLK-M", "stock": 22, "movement": MOVEMENT_EXAMPLE},
            response_only=True,
        )
    ]
)
class StockChangeOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    stock = serializers.IntegerField(help_text="Units on hand after the change.")
    movement = StockMovementOutputSerializer()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A sub-category",
            value={"name": "Long sleeve", "slug": "long-sleeve", "parent": "tees"},
            request_only=True,
        )
    ]
)
class CategoryInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    slug = fields.SlugField(max_length=120)
    parent = CategoryLookupField(required=False, allow_null=True, default=None)
    is_active = fields.BooleanField(required=False, default=True)


@extend_schema_serializer(
    examples=[OpenApiExample("A category", value=CATEGORY_EXAMPLE, response_only=True)]
)
class CategoryTreeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    is_active = serializers.BooleanField()
    children = serializers.SerializerMethodField()

    @extend_schema_field({"type": "array", "items": {"$ref": "#/components/schemas/CategoryTree"}})
    def get_children(self, node: Any) -> list[dict[str, Any]]:
        return CategoryTreeSerializer(node.tree_children, many=True).data
