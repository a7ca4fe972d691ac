"""The catalog's half of `import_products`: one CSV row upserts one variant and its product.

A row names a variant by `sku` (any letter case); rows that share a `product` key are
variants of one product. Blank values leave what is stored alone. Stock is not here: the
inventory's import (apps.inventory.imports) reads the file, calls `upsert_row` per row and
sets the row's stock in the same short transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models.functions import Upper
from django.utils.text import slugify
from rest_framework import serializers

from apps.catalog import services
from apps.catalog.models import (
    SKU_PATTERN,
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Product,
    ProductType,
    ProductVariant,
    store_currency,
)
from apps.catalog.serializers import CategoryLookupField, MoneyField, ProductTypeLookupField
from ecommerce.api import fields, identifiers
from ecommerce.api.parsers import FormData  # a CSV row is text, read as a form is
from ecommerce.money import amount_error

ATTRIBUTE_PREFIX = "attr:"
COLUMNS = (
    "product",
    "sku",
    "name",
    "variant_name",
    "description",
    "price",
    "category",
    "product_type",
    "is_active",
    "variant_is_active",
    "weight_grams",
)
PRODUCT_FIELDS = ("name", "description", "category", "product_type", "is_active")


class RowError(Exception):
    """A row the import refuses, with what is wrong in it."""


class RowSerializer(serializers.Serializer):
    """One row's catalog values; a blank cell is absent, so it changes nothing."""

    sku = fields.RegexField(SKU_PATTERN, max_length=64)
    name = fields.CharField(max_length=200, required=False)
    variant_name = fields.CharField(max_length=200, required=False)
    description = fields.CharField(required=False)
    price = MoneyField(required=False)
    category = CategoryLookupField(required=False)
    product_type = ProductTypeLookupField(required=False)
    is_active = fields.BooleanField(required=False)
    variant_is_active = fields.BooleanField(required=False)
    weight_grams = identifiers.IntegerField(required=False, min_value=0, max_value=10_000_000)


@dataclass(frozen=True)
class RowOutcome:
    outcome: str  # "created", "updated" or "unchanged"
    variant: ProductVariant
    created: bool


def messages_of(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {messages_of(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return ", ".join(messages_of(item) for item in detail)
    return str(detail)


def check_columns(header: Sequence[str], *, extra: Sequence[str] = ()) -> None:
    """Refuse a header with an unknown column or an attribute nobody declared.

    Raises ValueError naming them.
    """
    if "sku" not in header:
        raise ValueError("The header row must name a 'sku' column.")
    known = (*COLUMNS, *extra)
    unknown = [
        name for name in header if name not in known and not name.startswith(ATTRIBUTE_PREFIX)
    ]
    if unknown:
        raise ValueError(
            f"Unknown columns: {', '.join(unknown)} "
            f"(known: {', '.join(known)}, and {ATTRIBUTE_PREFIX}<attribute slug>)."
        )
    slugs = [name[len(ATTRIBUTE_PREFIX) :] for name in header if name.startswith(ATTRIBUTE_PREFIX)]
    declared = set(Attribute.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    missing = [f"{ATTRIBUTE_PREFIX}{slug}" for slug in slugs if slug not in declared]
    if missing:
        raise ValueError(f"Unknown attributes: {', '.join(missing)}.")
    twice = sorted({name for name in header if header.count(name) > 1 and name})
    if twice:
        raise ValueError(f"Columns named twice: {', '.join(twice)}.")


def product_of(skus: Iterable[str]) -> int | None:
    """The product of the first of `skus` (in their order) that exists, if any: what a
    product group of an import binds to."""
    wanted = [sku.upper() for sku in skus if sku]
    if not wanted:
        return None
    found = dict(
        ProductVariant.objects.annotate(key=Upper("sku"))
        .filter(key__in=wanted)
        .values_list("key", "product_id")
    )
    return next((found[sku] for sku in wanted if sku in found), None)


def _split_attributes(
    given: Mapping[str, str], product_type: ProductType | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Attribute values by level, as the product type declares each; RowError otherwise."""
    if not given:
        return {}, {}
    if product_type is None:
        raise RowError(
            f"{ATTRIBUTE_PREFIX}{sorted(given)[0]}: the product has no product type "
            "(give a product_type column)"
        )
    product_level = set(product_type.product_attributes.values_list("slug", flat=True))
    variant_level = set(product_type.variant_attributes.values_list("slug", flat=True))
    for slug in given:
        if slug not in product_level | variant_level:
            raise RowError(
                f"{ATTRIBUTE_PREFIX}{slug}: product type {product_type.slug} has no attribute "
                f"{slug}"
            )
    return (
        {slug: value for slug, value in given.items() if slug in product_level},
        {slug: value for slug, value in given.items() if slug in variant_level},
    )


def _same_value(value: AttributeValue | None, raw: str) -> bool:
    """Whether `raw` names the assigned value already (so nothing needs writing)."""
    if value is None:
        return False
    text = raw.strip()
    return (
        value.slug == slugify(text)
        or value.name.lower() == text.lower()
        or (value.number is not None and str(value.number.normalize()) == text)
    )


def _changed_values(
    assigned: Mapping[str, AttributeValue], given: Mapping[str, str]
) -> dict[str, str]:
    return {slug: raw for slug, raw in given.items() if not _same_value(assigned.get(slug), raw)}


def upsert_row(row: Mapping[str, str], *, product_id: int | None, actor: Any) -> RowOutcome:
    """Create or update the variant `row` names, and its product.

    `product_id` is the product the row's group is bound to (None: a new product, or the
    product of the SKU when it exists). Runs in the caller's transaction.
    Raises RowError, DomainError (SkuTaken, InvalidAttributes, ...).
    """
    values = {key: (value or "").strip() for key, value in row.items() if key}
    sku = values.get("sku", "")
    if not sku:
        raise RowError("sku: this column is required")
    given = {
        key: value
        for key, value in values.items()
        if value and key in COLUMNS and key not in ("product", "sku")
    }
    attributes = {
        key[len(ATTRIBUTE_PREFIX) :]: value
        for key, value in values.items()
        if key.startswith(ATTRIBUTE_PREFIX) and value
    }
    # The price's currency is known once the row's variant or product is: checked below.
    serializer = RowSerializer(data=FormData({"sku": sku, **given}), context={"currency": None})
    if not serializer.is_valid():
        raise RowError(messages_of(serializer.errors))
    data = dict(serializer.validated_data)
    variant = (
        ProductVariant.objects.select_related("product__product_type")
        .filter(sku__iexact=sku)
        .first()
    )
    product: Product | None
    if variant is not None:
        product = variant.product
        if product_id is not None and product.pk != product_id:
            raise RowError(
                f"sku: {variant.sku} is a variant of another product ({product.name}, "
                f"id {product.pk}) than the rest of its product group"
            )
    elif product_id is not None:
        product = Product.objects.select_related("product_type").get(pk=product_id)
    else:
        product = None
    if "price" in data:
        currency = (
            variant.currency if variant else product.currency if product else store_currency()
        )
        reason = amount_error(data["price"], currency)
        if reason is not None:
            raise RowError(f"price: {reason}")
    product_type = data.get("product_type", product.product_type if product else None)
    product_values, variant_values = _split_attributes(attributes, product_type)
    spec = {
        "sku": sku,
        "name": data.get("variant_name", ""),
        "weight_grams": data.get("weight_grams"),
        "is_active": data.get("variant_is_active", True),
        "attributes": variant_values,
    }
    if product is None:
        missing = [name for name in ("name", "price") if name not in data]
        if missing:
            raise RowError("; ".join(f"{name}: required for a new product" for name in missing))
        product = services.create_product(
            name=data["name"],
            description=data.get("description", ""),
            category=data.get("category"),
            product_type=product_type,
            attributes=product_values,
            is_active=data.get("is_active", True),
            variants=[services.VariantSpec(price=data["price"], **spec)],
            actor=actor,
        )
        return RowOutcome("created", product.variants.get(), created=True)

    changed = False
    product_changes = {
        name: data[name]
        for name in PRODUCT_FIELDS
        if name in data and getattr(product, name) != data[name]
    }
    assigned = {
        row.attribute.slug: row.value
        for row in AssignedProductAttribute.objects.filter(product=product).select_related(
            "attribute", "value"
        )
    }
    new_values = _changed_values(assigned, product_values)
    if new_values or product_changes.get("product_type"):
        product_changes["attributes"] = (
            product_values if product_changes.get("product_type") else new_values
        )
    if product_changes:
        services.update_product(product=product, **product_changes)
        changed = True

    if variant is None:
        if "price" not in data:
            raise RowError("price: required for a new variant")
        created = services.add_variant(
            product=product, spec=services.VariantSpec(price=data["price"], **spec), actor=actor
        )
        return RowOutcome("created", created, created=True)

    variant_changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("name", data.get("variant_name")),
            ("price", data.get("price")),
            ("weight_grams", data.get("weight_grams")),
            ("is_active", data.get("variant_is_active")),
        )
        if value is not None and getattr(variant, name) != value
    }
    assigned = {
        row.attribute.slug: row.value
        for row in AssignedVariantAttribute.objects.filter(variant=variant).select_related(
            "attribute", "value"
        )
    }
    new_values = _changed_values(assigned, variant_values)
    if new_values:
        variant_changes["attributes"] = new_values
    if variant_changes:
        variant.product = product
        services.update_variant(variant=variant, **variant_changes)
        changed = True
    return RowOutcome("updated" if changed else "unchanged", variant, created=False)
