"""Input and output shapes of the catalog API. Money is a decimal string with its currency,
in that currency's places: "19.90" EUR, "1200" JPY."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.catalog.models import (
    SKU_PATTERN,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductMedia,
    ProductType,
    ProductVariant,
)
from ecommerce.api import fields, identifiers
from ecommerce.money import amount_error, format_amount

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,120}", re.ASCII)
# What PostgreSQL text cannot hold (NUL) or UTF-8 cannot encode (lone surrogates); DRF's
# CharField refuses both, the free-form attribute values must too.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
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
    """A positive price exact to its currency's minor unit, as a string: `19.90`, `1200`.

    The currency is the serializer context's `currency` (the product's or variant's when it
    exists), else the store's; a context `currency` of None leaves the check to the caller.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "Exact to the currency's minor unit: two places at most (none for JPY, KRW, ...).",
        )
        super().__init__(**{**MONEY, **kwargs})

    def to_internal_value(self, data: Any) -> Decimal:
        value = super().to_internal_value(data)
        currency = self.context.get("currency", settings.STORE_CURRENCY)
        if currency is not None:
            reason = amount_error(value, currency)
            if reason is not None:
                raise serializers.ValidationError(reason, code="inexact_amount")
        return value


@extend_schema_field({"type": "string", "format": "decimal", "example": "19.90"})
class PriceOutputField(serializers.Field):
    """The object's `price` in its `currency`'s places: `19.90`, `1200` (yen)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return format_amount(value.price, value.currency)


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


@extend_schema_serializer(
    examples=[OpenApiExample("A variant", value=VARIANT_EXAMPLE, response_only=True)]
)
class VariantOutputSerializer(serializers.ModelSerializer):
    price = PriceOutputField()
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


MEDIA_EXAMPLE: dict[str, Any] = {
    "id": 9,
    "url": "/media/products/42/3f9c0a7e5b6d4e1f8a2b9c0d1e2f3a4b.jpg",
    "alt": "Organic tee, front",
    "width": 1600,
    "height": 1200,
    "thumbnails": {},
}


class MediaInputSerializer(serializers.Serializer):
    """A multipart upload: the image's type is read from its bytes, not its name."""

    image = serializers.FileField(
        allow_empty_file=False,
        use_url=False,
        help_text="A JPEG, PNG, WebP or GIF image, at most MEDIA_MAX_BYTES bytes and "
        "MEDIA_MAX_PIXELS pixels.",
    )
    alt = fields.CharField(required=False, allow_blank=True, max_length=255, default="")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "New alternative text, first in the gallery",
            value={"alt": "Organic tee, back", "sort_order": 0},
            request_only=True,
        )
    ]
)
class MediaUpdateInputSerializer(serializers.Serializer):
    alt = fields.CharField(required=False, allow_blank=True, max_length=255)
    sort_order = identifiers.IntegerField(
        required=False, min_value=0, max_value=1_000_000, help_text="Lower comes first."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A product",
            value={
                **{key: PRODUCT_EXAMPLE[key] for key in ("id", "sku", "name", "price", "currency")},
                "category": PRODUCT_EXAMPLE["category"],
                "stock": 12,
                "in_stock": True,
                "thumbnail": "/media/products/42/3f9c0a7e5b6d4e1f8a2b9c0d1e2f3a4b_160.webp",
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
    price = PriceOutputField(help_text="The lowest price of its variants.")
    # The same shape as in the detail, so a client reads a product's category one way.
    category = CategoryRefSerializer(read_only=True, allow_null=True)
    stock = serializers.IntegerField(source="stock_total", read_only=True)
    in_stock = serializers.SerializerMethodField()
    thumbnail = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = (
            "id",
            "sku",
            "name",
            "price",
            "currency",
            "category",
            "stock",
            "in_stock",
            "thumbnail",
        )
        read_only_fields = fields

    def get_in_stock(self, product: Product) -> bool:
        return product.stock_total > 0  # type: ignore[attr-defined]

    @extend_schema_field(
        {
            "type": "string",
            "nullable": True,
            "description": "URL of the first image's smallest thumbnail; null until made.",
        }
    )
    def get_thumbnail(self, product: Product) -> str | None:
        # Annotated by selectors.products() (a subquery, not a query per row).
        thumbnails = getattr(product, "first_media_thumbnails", None)
        if not thumbnails:
            return None
        storage = ProductMedia._meta.get_field("image").storage  # type: ignore[attr-defined]
        return str(storage.url(thumbnails[min(thumbnails, key=int)]))


@extend_schema_serializer(
    examples=[OpenApiExample("A product", value=PRODUCT_EXAMPLE, response_only=True)]
)
class ProductDetailOutputSerializer(ProductListOutputSerializer):
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
                {"type": "string", "minLength": 1, "maxLength": 200},
                {"type": "number"},
                {"type": "boolean"},
            ],
            "nullable": True,
        },
        "description": "Attribute values by attribute slug: a choice value's slug or name, "
        "a text, a number or true/false as the attribute's type asks; null removes the "
        "attribute's value.",
        "example": {"colour": "black", "size": "m"},
    }
)
class AttributeValuesField(serializers.Field):
    """`{"colour": "black", "size": "m"}`: checked against the product type by the service."""

    default_error_messages = {
        "invalid": "Give attribute values as an object: attribute slug to value.",
        "too_many": f"At most {MAX_ATTRIBUTES} attributes.",
        "bad_slug": "Unknown attribute slug form: {slug}.",
        "bad_value": "The value of {slug} must be a string of at most 200 characters "
        "(no NUL), a number, true/false or null.",
    }

    def to_internal_value(self, data: Any) -> dict[str, str | int | float | bool | None]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > MAX_ATTRIBUTES:
            self.fail("too_many")
        for slug, value in data.items():
            if not SLUG.fullmatch(slug):
                self.fail("bad_slug", slug=slug[:120])
            if not (
                value is None
                or isinstance(value, bool | int | float)
                or (
                    isinstance(value, str)
                    and 0 < len(value.strip()) <= 200
                    and not UNSTORABLE.search(value)
                )
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


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A size more",
            value={
                "sku": "TEE-BLK-L",
                "name": "L / Black",
                "price": "19.90",
                "attributes": {"colour": "black", "size": "l"},
                "stock": 5,
            },
            request_only=True,
        )
    ]
)
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


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A new price, and off sale",
            value={"price": "17.90", "is_active": False},
            request_only=True,
        ),
        OpenApiExample(
            "Another colour; null removes a value",
            value={"attributes": {"colour": "white", "size": None}},
            request_only=True,
        ),
    ]
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
            attrs.pop("stock", None)
            # Two variants sharing a SKU are the service's SkuTaken (409), like a taken one.
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
    """PUT needs the descriptive fields; `price` (a one-variant product's only), the
    product type and attribute values are optional even then: a product with several
    variants has no one price, and a type change drops the values the new type lacks."""

    name = fields.CharField(max_length=200)
    description = fields.CharField(allow_blank=True)
    price = MoneyField(
        required=False,
        help_text="Sets the price of a product's only variant (400 with several).",
    )
    category = CategoryLookupField(allow_null=True)
    product_type = ProductTypeLookupField(required=False, allow_null=True)
    attributes = AttributeValuesField(required=False)
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


# --- Attributes and product types ------------------------------------------------------------

ATTRIBUTE_OUT_EXAMPLE: dict[str, Any] = {
    "id": 5,
    "slug": "size",
    "name": "Size",
    "input_type": "choice",
    "unit": "",
    "filterable": True,
    "values": [
        {"id": 11, "slug": "m", "name": "M", "sort_order": 0},
        {"id": 12, "slug": "l", "name": "L", "sort_order": 1},
    ],
}
PRODUCT_TYPE_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "slug": "t-shirt",
    "name": "T-shirt",
    "tax_class": "standard",
    "product_attributes": ["material"],
    "variant_attributes": ["colour", "size"],
}
TAX_CLASS_HELP = (
    "The slug of the pricing tax class of the type's products (standard, reduced, zero, ...)."
)
# Bounds on one attribute or product type write.
MAX_VALUES = 200


class AttributeValueOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttributeValue
        fields = ("id", "slug", "name", "sort_order")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[OpenApiExample("An attribute", value=ATTRIBUTE_OUT_EXAMPLE, response_only=True)]
)
class AttributeOutputSerializer(serializers.ModelSerializer):
    """An attribute with its declared choice values (text, number and yes/no attributes
    list none: their values are made as products use them)."""

    values = AttributeValueOutputSerializer(
        source="choice_values", many=True, read_only=True, help_text="Choice values, in order."
    )

    class Meta:
        model = Attribute
        fields = ("id", "slug", "name", "input_type", "unit", "filterable", "values")
        read_only_fields = fields


class AttributeValueInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=200)
    slug = fields.SlugField(
        max_length=200, required=False, help_text="From the name when not given."
    )
    sort_order = identifiers.IntegerField(
        required=False, min_value=0, max_value=1_000_000, help_text="After the others if absent."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A choice attribute",
            value={
                "name": "Size",
                "slug": "size",
                "input_type": "choice",
                "values": [{"name": "M"}, {"name": "L"}],
            },
            request_only=True,
        ),
        OpenApiExample(
            "A number with a unit",
            value={"name": "Width", "slug": "width", "input_type": "number", "unit": "cm"},
            request_only=True,
        ),
    ]
)
class AttributeInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    slug = fields.SlugField(max_length=120)
    input_type = fields.ChoiceField(choices=Attribute.InputType.choices, default="choice")
    unit = fields.CharField(max_length=16, required=False, allow_blank=True, default="")
    filterable = fields.BooleanField(required=False, default=True)
    values = AttributeValueInputSerializer(
        many=True, required=False, default=list, max_length=MAX_VALUES
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample("Rename", value={"name": "Size (EU)", "filterable": True}, request_only=True)
    ]
)
class AttributeUpdateInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    input_type = fields.ChoiceField(
        choices=Attribute.InputType.choices, help_text="Only while the attribute has no values."
    )
    unit = fields.CharField(max_length=16, allow_blank=True)
    filterable = fields.BooleanField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Two more sizes",
            value={"values": [{"name": "XL"}, {"name": "XXL", "slug": "xxl"}]},
            request_only=True,
        ),
        OpenApiExample(
            "The values added",
            value={"values": [{"id": 13, "slug": "xl", "name": "XL", "sort_order": 2}]},
            response_only=True,
        ),
    ]
)
class AttributeValuesInputSerializer(serializers.Serializer):
    values = AttributeValueInputSerializer(many=True, allow_empty=False, max_length=MAX_VALUES)


class AttributeValuesOutputSerializer(serializers.Serializer):
    values = AttributeValueOutputSerializer(many=True, read_only=True)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 120},
        "maxItems": MAX_ATTRIBUTES,
        "description": "Attribute slugs.",
    }
)
class AttributeSlugsField(serializers.Field):
    """A list of attribute slugs, each naming an existing attribute (one query)."""

    default_error_messages = {
        "invalid": "Give a list of attribute slugs.",
        "too_many": f"At most {MAX_ATTRIBUTES} attributes.",
        "unknown": "Unknown attribute: {slugs}.",
    }

    def to_internal_value(self, data: Any) -> list[Attribute]:
        if not isinstance(data, list) or not all(
            isinstance(slug, str) and SLUG.fullmatch(slug) for slug in data
        ):
            self.fail("invalid")
        if len(data) > MAX_ATTRIBUTES:
            self.fail("too_many")
        found = {a.slug: a for a in Attribute.objects.filter(slug__in=data)}
        unknown = [slug for slug in dict.fromkeys(data) if slug not in found]
        if unknown:
            self.fail("unknown", slugs=", ".join(unknown))
        return [found[slug] for slug in dict.fromkeys(data)]

    def to_representation(self, value: Any) -> list[str]:
        return [attribute.slug for attribute in value.all()]


@extend_schema_serializer(
    examples=[OpenApiExample("A product type", value=PRODUCT_TYPE_EXAMPLE, response_only=True)]
)
class ProductTypeOutputSerializer(serializers.ModelSerializer):
    product_attributes = AttributeSlugsField(read_only=True)
    variant_attributes = AttributeSlugsField(read_only=True)

    class Meta:
        model = ProductType
        fields = ("id", "slug", "name", "tax_class", "product_attributes", "variant_attributes")
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A type in sizes and colours",
            value={key: PRODUCT_TYPE_EXAMPLE[key] for key in PRODUCT_TYPE_EXAMPLE if key != "id"},
            request_only=True,
        )
    ]
)
class ProductTypeInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=120)
    slug = fields.SlugField(max_length=120)
    tax_class = fields.SlugField(
        max_length=32, required=False, default="standard", help_text=TAX_CLASS_HELP
    )
    product_attributes = AttributeSlugsField(required=False, default=list)
    variant_attributes = AttributeSlugsField(required=False, default=list)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Sizes only",
            value={"variant_attributes": ["size"]},
            request_only=True,
        )
    ]
)
class ProductTypeUpdateInputSerializer(serializers.Serializer):
    """An attribute left out of a list loses its values on the type's products."""

    name = fields.CharField(max_length=120)
    tax_class = fields.SlugField(max_length=32, help_text=TAX_CLASS_HELP)
    product_attributes = AttributeSlugsField()
    variant_attributes = AttributeSlugsField()
