"""Input and output shapes of the catalog API. Money is a decimal string with its currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from apps.catalog.models import SKU_PATTERN, Category, Product, StockMovement, StockReason

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0.01")}


class CategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "slug", "name")
        read_only_fields = fields


class ProductListOutputSerializer(serializers.ModelSerializer):
    """The lean list row."""

    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    in_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = ("id", "sku", "name", "price", "currency", "category", "stock", "in_stock")
        read_only_fields = fields


class ProductDetailOutputSerializer(serializers.ModelSerializer):
    category = CategoryRefSerializer(read_only=True)
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


class CategoryLookupField(serializers.Field):
    """A category given by slug or numeric id."""

    default_error_messages = {"unknown": "Unknown category: {value}."}

    def to_internal_value(self, data: Any) -> Category:
        value = str(data).strip()
        lookup = {"pk": int(value)} if value.isdigit() else {"slug": value}
        category = Category.objects.filter(**lookup).first()
        if category is None:
            self.fail("unknown", value=value)
        return category

    def to_representation(self, value: Category) -> str:
        return value.slug


class ProductCreateInputSerializer(serializers.Serializer):
    sku = serializers.RegexField(SKU_PATTERN, max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    price = serializers.DecimalField(**MONEY)
    category = CategoryLookupField(required=False, allow_null=True, default=None)
    is_active = serializers.BooleanField(required=False, default=True)
    stock = serializers.IntegerField(required=False, min_value=0, default=0)


class ProductUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True)
    price = serializers.DecimalField(**MONEY)
    category = CategoryLookupField(allow_null=True)
    is_active = serializers.BooleanField()


class StockChangeInputSerializer(serializers.Serializer):
    delta = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000)
    reason = serializers.ChoiceField(choices=[StockReason.RESTOCK, StockReason.ADJUSTMENT])
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["delta"] == 0:
            raise serializers.ValidationError({"delta": "The delta cannot be zero."})
        if attrs["reason"] == StockReason.RESTOCK and attrs["delta"] < 0:
            raise serializers.ValidationError(
                {"delta": "A restock adds units: use a positive delta."}
            )
        return attrs


class StockMovementOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = StockMovement
        fields = ("id", "delta", "balance", "reason", "reference", "note", "actor", "created_at")
        read_only_fields = fields


class CategoryInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=120)
    parent = CategoryLookupField(required=False, allow_null=True, default=None)
    is_active = serializers.BooleanField(required=False, default=True)


class CategoryTreeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    is_active = serializers.BooleanField()
    children = serializers.SerializerMethodField()

    def get_children(self, node: Any) -> list[dict[str, Any]]:
        return CategoryTreeSerializer(node.tree_children, many=True).data
