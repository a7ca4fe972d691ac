"""Input and output shapes of the catalog API. Money is a decimal string with its currency."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import (
    SKU_PATTERN,
    Category,
    Product,
    ProductMedia,
    ProductType,
    ProductVariant,
)
from ecommerce.api import fields, identifiers

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,120}", re.ASCII)
# Units one product may hold, and one stock change may move: the column is a 32-bit integer.
MAX_STOCK_CHANGE = 1_000_000
# Bounds on one product write, so one request cannot cost much.
MAX_VARIANTS = 100
MAX_ATTRIBUTES = 30
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
ATTRIBUTE_EXAMPLE: dict[str, Any] = {
    "attribute": "colour",
    "name": "Colour",
    "value": "Black",
    "slug": "black",
}
VARIANT_EXAMPLE: dict[str, Any] = {
    "id": 57,
    "sku": "TEE-BLK-M",
    "name": "M / Black",
    "price": "19.90",
    "currency": "EUR",
    "attributes": [
        ATTRIBUTE_EXAMPLE,
        {"attribute": "size", "name": "Size", "value": "M", "slug": "m"},
    ],
    "stock": 12,
    "in_stock": True,
    "is_active": True,
}
PRODUCT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "sku": "TEE-BLK-M",
    "name": "Organic tee",
    "description": "Organic cotton.",
    "price": "19.90",
    "currency": "EUR",
    "category": {"id": 3, "slug": "tees", "name": "Tees"},
    "product_type": {"slug": "t-shirt", "name": "T-shirt"},
    "attributes": [
        {"attribute": "material", "name": "Material", "value": "Cotton", "slug": "cotton"}
    ],
    "variants": [VARIANT_EXAMPLE],
    "media": [],
    "stock": 12,
    "in_stock": True,
    "is_active": True,
    "created_at": "2026-11-24T10:15:00.123456Z",
    "updated_at": "2026-11-24T10:15:00.123456Z",
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


class AssignedAttributeSerializer(serializers.Serializer):
    """One attribute value of a product or variant."""

    attribute = serializers.CharField(source="attribute.slug", help_text="Attribute slug.")
    name = serializers.CharField(source="attribute.name", help_text="Attribute name.")
    value = serializers.CharField(source="value.name", help_text="The value as shown.")
    slug = serializers.CharField(
        source="value.slug", help_text="The value's slug, as `?attr=` filters take it."
    )


class ProductTypeRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductType
        fields = ("slug", "name")
        read_only_fields = fields


class VariantOutputSerializer(serializers.ModelSerializer):
    attributes = AssignedAttributeSerializer(
        source="attribute_assignments", many=True, read_only=True
    )
    stock = serializers.IntegerField(
        source="stock_total", read_only=True, help_text="Units on hand in all warehouses."
    )
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = ProductVariant
        fields = (
            "id",
            "sku",
            "name",
            "price",
            "currency",
            "attributes",
            "stock",
            "in_stock",
            "is_active",
        )
        read_only_fields = fields

    def get_in_stock(self, variant: ProductVariant) -> bool:
        return variant.stock_total > 0  # type: ignore[attr-defined]


class MediaOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnails = serializers.SerializerMethodField()

    class Meta:
        model = ProductMedia
        fields = ("id", "url", "alt", "width", "height", "thumbnails")
        read_only_fields = fields

    def get_url(self, media: ProductMedia) -> str:
        return media.image.url

    @extend_schema_field(
        {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Thumbnail URL by size name, once made (empty until then).",
        }
    )
    def get_thumbnails(self, media: ProductMedia) -> dict[str, str]:
        storage = media.image.storage
        return {size: storage.url(name) for size, name in sorted(media.thumbnails.items())}


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
    """The lean list row: the lowest price of its variants, their stock summed."""

    sku = serializers.CharField(
        source="first_sku", read_only=True, help_text="SKU of its first variant."
    )
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    stock = serializers.IntegerField(source="stock_total", read_only=True)
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ("id", "sku", "name", "price", "currency", "category", "stock", "in_stock")
        read_only_fields = fields

    def get_in_stock(self, product: Product) -> bool:
        return product.stock_total > 0  # type: ignore[attr-defined]


@extend_schema_serializer(
    examples=[OpenApiExample("A product", value=PRODUCT_EXAMPLE, response_only=True)]
)
class ProductDetailOutputSerializer(ProductListOutputSerializer):
    category = CategoryRefSerializer(read_only=True, allow_null=True)
    product_type = ProductTypeRefSerializer(read_only=True, allow_null=True)
    attributes = AssignedAttributeSerializer(
        source="attribute_assignments", many=True, read_only=True
    )
    variants = VariantOutputSerializer(source="listed_variants", many=True, read_only=True)
    media = MediaOutputSerializer(many=True, read_only=True)

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
            "product_type",
            "attributes",
            "variants",
            "media",
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


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_ATTRIBUTES,
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": 200},
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
        "description": "Attribute values by attribute slug: a choice value's slug or name, "
        "a text, a number or true/false as the attribute's type asks.",
        "example": {"colour": "black", "size": "m"},
    }
)
class AttributeValuesField(serializers.Field):
    """`{"colour": "black", "size": "m"}`: checked against the product type by the service."""

    default_error_messages = {
        "invalid": "Give attribute values as an object: attribute slug to value.",
        "too_many": f"At most {MAX_ATTRIBUTES} attributes.",
        "bad_slug": "Unknown attribute slug form: {slug}.",
        "bad_value": "The value of {slug} must be a string of at most 200 characters, "
        "a number or true/false.",
    }

    def to_internal_value(self, data: Any) -> dict[str, str | int | float | bool]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > MAX_ATTRIBUTES:
            self.fail("too_many")
        for slug, value in data.items():
            if not SLUG.fullmatch(slug):
                self.fail("bad_slug", slug=slug[:120])
            if not (
                isinstance(value, bool | int | float)
                or (isinstance(value, str) and 0 < len(value.strip()) <= 200)
            ):
                self.fail("bad_value", slug=slug)
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 120, "nullable": True}
)
class ProductTypeLookupField(serializers.Field):
    default_error_messages = {"unknown": "Unknown product type: {value}."}

    def to_internal_value(self, data: Any) -> ProductType:
        product_type = (
            ProductType.objects.filter(slug=data).first()
            if isinstance(data, str) and SLUG.fullmatch(data)
            else None
        )
        if product_type is None:
            self.fail("unknown", value=str(data)[:120])
        return product_type

    def to_representation(self, value: ProductType) -> str:
        return value.slug


class VariantInputSerializer(serializers.Serializer):
    sku = fields.RegexField(SKU_PATTERN, max_length=64)
    name = fields.CharField(required=False, allow_blank=True, max_length=200, default="")
    price = MoneyField()
    attributes = AttributeValuesField(required=False, default=dict)
    weight_grams = identifiers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=10_000_000, default=None
    )
    is_active = fields.BooleanField(required=False, default=True)
    stock = identifiers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_STOCK_CHANGE,
        default=0,
        help_text="Initial units, received into the default warehouse.",
    )


class VariantUpdateInputSerializer(serializers.Serializer):
    name = fields.CharField(allow_blank=True, max_length=200)
    price = MoneyField()
    attributes = AttributeValuesField()
    weight_grams = identifiers.IntegerField(allow_null=True, min_value=0, max_value=10_000_000)
    is_active = fields.BooleanField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A product sold as one SKU",
            value={
                "sku": "MUG-01",
                "name": "Enamel mug",
                "price": "12.00",
                "category": "kitchen",
                "stock": 12,
            },
            request_only=True,
        ),
        OpenApiExample(
            "A product in sizes",
            value={
                "name": "Organic tee",
                "category": "tees",
                "product_type": "t-shirt",
                "attributes": {"material": "cotton"},
                "variants": [
                    {"sku": "TEE-BLK-M", "price": "19.90", "attributes": {"size": "m"}},
                    {"sku": "TEE-BLK-L", "price": "19.90", "attributes": {"size": "l"}},
                ],
            },
            request_only=True,
        ),
    ]
)
class ProductCreateInputSerializer(serializers.Serializer):
    """Either `sku` and `price` (one variant), or `variants`."""

    name = fields.CharField(max_length=200)
    description = fields.CharField(required=False, allow_blank=True, default="")
    category = CategoryLookupField(required=False, allow_null=True, default=None)
    product_type = ProductTypeLookupField(required=False, allow_null=True, default=None)
    attributes = AttributeValuesField(required=False, default=dict)
    is_active = fields.BooleanField(required=False, default=True)
    sku = fields.RegexField(SKU_PATTERN, max_length=64, required=False)
    price = MoneyField(required=False)
    stock = identifiers.IntegerField(
        required=False, min_value=0, max_value=MAX_STOCK_CHANGE, default=0
    )
    variants = VariantInputSerializer(
        many=True, required=False, allow_empty=False, max_length=MAX_VARIANTS
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        single = {"sku", "price"} & attrs.keys()
        if "variants" in attrs:
            if single or attrs.get("stock"):
                raise serializers.ValidationError(
                    "Give either sku, price and stock, or variants, not both."
                )
            skus = [variant["sku"].upper() for variant in attrs["variants"]]
            if len(set(skus)) != len(skus):
                raise serializers.ValidationError({"variants": "Two variants share a SKU."})
            return attrs
        missing = {"sku", "price"} - single
        if missing:
            raise serializers.ValidationError(
                dict.fromkeys(sorted(missing), "This field is required (or give variants).")
            )
        attrs["variants"] = [
            {
                "sku": attrs.pop("sku"),
                "name": "",
                "price": attrs.pop("price"),
                "attributes": {},
                "weight_grams": None,
                "is_active": True,
                "stock": attrs.pop("stock", 0),
            }
        ]
        return attrs


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
    price = MoneyField(help_text="Sets the price of a product's only variant.")
    category = CategoryLookupField(allow_null=True)
    product_type = ProductTypeLookupField(allow_null=True)
    attributes = AttributeValuesField()
    is_active = fields.BooleanField()


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
