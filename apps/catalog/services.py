"""The only code that writes the catalog: categories, products, their variants and
attribute values. Stock is not here: `apps.inventory.services` writes it.

A product's `price` and `currency` are those of its cheapest active variant; every write
to a variant recomputes them in the same transaction, so lists sort and filter on a column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.catalog import signals
from apps.catalog.cache import invalidate_products_on_commit
from apps.catalog.exceptions import InvalidAttributes, InvalidCategory, SkuTaken
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductType,
    ProductVariant,
)
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

AttributeInput = Mapping[str, str | int | float | bool]


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal
    name: str = ""
    attributes: AttributeInput = field(default_factory=dict)
    weight_grams: int | None = None
    is_active: bool = True
    initial_stock: int = 0


def check_category_parent(category: Category | None, parent: Category | None) -> None:
    """Refuse a parent that is the category itself or one of its descendants."""
    node = parent
    while node is not None and category is not None and category.pk is not None:
        if node.pk == category.pk:
            raise InvalidCategory("A category cannot be its own ancestor.")
        node = node.parent


def create_category(
    *, name: str, slug: str, parent: Category | None = None, is_active: bool = True
) -> Category:
    try:
        with transaction.atomic():
            category = Category.objects.create(
                name=name, slug=slug, parent=parent, is_active=is_active
            )
    except IntegrityError:
        raise InvalidCategory(f"A category with slug {slug} already exists.") from None
    invalidate_products_on_commit(())
    return category


def update_category(*, category: Category, **fields: Any) -> Category:
    if "parent" in fields:
        check_category_parent(category, fields["parent"])
    for name, value in fields.items():
        setattr(category, name, value)
    try:
        with transaction.atomic():
            category.save(update_fields=[*fields, "updated_at"])
    except IntegrityError:
        raise InvalidCategory("A category with that slug already exists.") from None
    invalidate_products_on_commit(
        Product.objects.filter(category=category).values_list("pk", flat=True)
    )
    return category


def _value_for(attribute: Attribute, raw: str | int | float | bool) -> AttributeValue:
    """The AttributeValue row `raw` names for `attribute`; made on first use for text,
    number and yes/no attributes. Raises InvalidAttributes for a value the type refuses."""
    kind = Attribute.InputType
    if attribute.input_type == kind.CHOICE:
        text = str(raw).strip()
        value = (
            attribute.values.filter(slug=slugify(text)).first()
            or attribute.values.filter(name__iexact=text).first()
        )
        if value is None:
            choices = ", ".join(attribute.values.values_list("slug", flat=True)[:20])
            raise InvalidAttributes(f"{attribute.slug}: {text!r} is not one of: {choices}.")
        return value
    if attribute.input_type == kind.BOOLEAN:
        if not isinstance(raw, bool) and str(raw).lower() not in ("true", "false"):
            raise InvalidAttributes(f"{attribute.slug}: give true or false.")
        flag = raw if isinstance(raw, bool) else str(raw).lower() == "true"
        name, slug, number = ("Yes", "true", None) if flag else ("No", "false", None)
    elif attribute.input_type == kind.NUMBER:
        if isinstance(raw, bool):
            raise InvalidAttributes(f"{attribute.slug}: give a number.")
        try:
            number = Decimal(str(raw)).normalize()
        except InvalidOperation:
            raise InvalidAttributes(f"{attribute.slug}: give a number.") from None
        if (
            not number.is_finite()
            or abs(number) >= Decimal("1e12")
            or number.as_tuple().exponent < -6
        ):
            raise InvalidAttributes(f"{attribute.slug}: a number below 10^12, 6 decimals at most.")
        text = format(number, "f")
        name = f"{text} {attribute.unit}".strip()
        slug = re.sub(r"[^0-9a-z-]", "-", text.lower())
    else:
        name = str(raw).strip()
        slug = slugify(name)[:200] or "value"
        number = None
    value, _ = AttributeValue.objects.get_or_create(
        attribute=attribute, slug=slug, defaults={"name": name, "number": number}
    )
    return value


def _resolve(
    allowed: Sequence[Attribute], given: AttributeInput, *, scope: str
) -> list[tuple[Attribute, AttributeValue]]:
    by_slug = {attribute.slug: attribute for attribute in allowed}
    unknown = sorted(set(given) - set(by_slug))
    if unknown:
        raise InvalidAttributes(
            f"The product type has no {scope} attribute {', '.join(unknown)}"
            + (f" (it has: {', '.join(sorted(by_slug))})." if by_slug else ".")
        )
    return [(by_slug[slug], _value_for(by_slug[slug], raw)) for slug, raw in given.items()]


def _product_attributes(product_type: ProductType | None) -> list[Attribute]:
    return list(product_type.product_attributes.all()) if product_type else []


def _variant_attributes(product_type: ProductType | None) -> list[Attribute]:
    return list(product_type.variant_attributes.all()) if product_type else []


def _assign_product_values(product: Product, given: AttributeInput) -> None:
    pairs = _resolve(_product_attributes(product.product_type), given, scope="product")
    AssignedProductAttribute.objects.filter(
        product=product, attribute__in=[attribute for attribute, _ in pairs]
    ).delete()
    AssignedProductAttribute.objects.bulk_create(
        AssignedProductAttribute(product=product, attribute=attribute, value=value)
        for attribute, value in pairs
    )


def _assign_variant_values(
    variant: ProductVariant, product_type: ProductType | None, given: AttributeInput
) -> None:
    pairs = _resolve(_variant_attributes(product_type), given, scope="variant")
    AssignedVariantAttribute.objects.filter(
        variant=variant, attribute__in=[attribute for attribute, _ in pairs]
    ).delete()
    AssignedVariantAttribute.objects.bulk_create(
        AssignedVariantAttribute(variant=variant, attribute=attribute, value=value)
        for attribute, value in pairs
    )


def refresh_price(product: Product) -> None:
    """Set the product's price and currency to its cheapest active variant's (or, with
    none active, its cheapest variant's)."""
    variants = ProductVariant.objects.filter(product=product)
    active = variants.filter(is_active=True)
    cheapest = (active if active.exists() else variants).order_by("price", "pk").first()
    if cheapest is None:
        return
    if (product.price, product.currency) != (cheapest.price, cheapest.currency):
        product.price, product.currency = cheapest.price, cheapest.currency
        Product.objects.filter(pk=product.pk).update(
            price=cheapest.price, currency=cheapest.currency
        )


def _receive_initial_stock(
    variants: Sequence[tuple[ProductVariant, VariantSpec]], actor: Any
) -> None:
    quantities = {
        variant.pk: spec.initial_stock for variant, spec in variants if spec.initial_stock
    }
    if quantities:
        signals.initial_stock.send(sender=ProductVariant, quantities=quantities, actor=actor)


def _create_variant(product: Product, spec: VariantSpec, *, sort_order: int) -> ProductVariant:
    try:
        with transaction.atomic():
            variant = ProductVariant.objects.create(
                product=product,
                sku=spec.sku,
                name=spec.name,
                price=spec.price,
                currency=product.currency,
                weight_grams=spec.weight_grams,
                is_active=spec.is_active,
                sort_order=sort_order,
            )
    except IntegrityError:
        if ProductVariant.objects.filter(sku__iexact=spec.sku).exists():
            raise SkuTaken(sku=spec.sku) from None
        raise
    _assign_variant_values(variant, product.product_type, spec.attributes)
    return variant


def create_product(
    *,
    name: str,
    variants: Sequence[VariantSpec],
    description: str = "",
    category: Category | None = None,
    product_type: ProductType | None = None,
    attributes: AttributeInput | None = None,
    is_active: bool = True,
    actor: Any = None,
) -> Product:
    """Create a product with its variants (at least one) and attribute values.

    Raises SkuTaken when a SKU exists in any letter case, InvalidAttributes for values
    its product type does not declare or accept. Each variant's `initial_stock` is received
    into the default warehouse in the same transaction (see apps.catalog.signals).
    """
    if not variants:
        raise InvalidInput("A product has at least one variant.")
    with transaction.atomic():
        product = Product.objects.create(
            name=name,
            description=description,
            category=category,
            product_type=product_type,
            is_active=is_active,
            price=min(spec.price for spec in variants),
        )
        _assign_product_values(product, attributes or {})
        created = [
            (_create_variant(product, spec, sort_order=index), spec)
            for index, spec in enumerate(variants)
        ]
        refresh_price(product)
        _receive_initial_stock(created, actor)
        invalidate_products_on_commit([product.pk], skus=[spec.sku for spec in variants])
    logger.info("product_created", product_id=product.pk, skus=[spec.sku for spec in variants])
    return product


def add_variant(*, product: Product, spec: VariantSpec, actor: Any = None) -> ProductVariant:
    """Add a variant to a product. Raises SkuTaken, InvalidAttributes."""
    with transaction.atomic():
        position = ProductVariant.objects.filter(product=product).count()
        variant = _create_variant(product, spec, sort_order=position)
        refresh_price(product)
        _receive_initial_stock([(variant, spec)], actor)
        invalidate_products_on_commit([product.pk], skus=[spec.sku])
    logger.info("variant_created", product_id=product.pk, sku=variant.sku)
    return variant


UPDATABLE_VARIANT_FIELDS = frozenset({"name", "price", "weight_grams", "is_active", "attributes"})


def update_variant(*, variant: ProductVariant, **fields: Any) -> ProductVariant:
    """Change a variant's name, price, weight, activity or attribute values (not its SKU)."""
    unknown = set(fields) - UPDATABLE_VARIANT_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    attributes = fields.pop("attributes", None)
    with transaction.atomic():
        for name, value in fields.items():
            setattr(variant, name, value)
        if fields:
            variant.save(update_fields=[*fields, "updated_at"])
        product = variant.product
        if attributes is not None:
            _assign_variant_values(variant, product.product_type, attributes)
        refresh_price(product)
        invalidate_products_on_commit([variant.product_id])
    logger.info(
        "variant_updated",
        sku=variant.sku,
        fields=sorted([*fields, *(["attributes"] if attributes is not None else [])]),
    )
    return variant


UPDATABLE_PRODUCT_FIELDS = frozenset(
    {"name", "description", "price", "category", "product_type", "is_active", "attributes"}
)


def update_product(*, product: Product, **fields: Any) -> Product:
    """Change a product's descriptive fields and attribute values.

    `price` sets the price of a product's only variant (InvalidInput when it has several:
    prices are per variant).
    """
    unknown = set(fields) - UPDATABLE_PRODUCT_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not fields:
        return product
    price = fields.pop("price", None)
    attributes = fields.pop("attributes", None)
    with transaction.atomic():
        for name, value in fields.items():
            setattr(product, name, value)
        if fields:
            product.save(update_fields=[*fields, "updated_at"])
        if attributes is not None:
            _assign_product_values(product, attributes)
        if price is not None:
            variants = list(ProductVariant.objects.filter(product=product)[:2])
            if len(variants) != 1:
                raise InvalidInput(
                    "This product has several variants: set the price of each variant."
                )
            variants[0].price = price
            variants[0].save(update_fields=["price", "updated_at"])
            refresh_price(product)
        invalidate_products_on_commit([product.pk])
    logger.info(
        "product_updated",
        product_id=product.pk,
        fields=sorted(
            [
                *fields,
                *(["price"] if price is not None else []),
                *(["attributes"] if attributes is not None else []),
            ]
        ),
    )
    return product


def deactivate_product(*, product: Product) -> Product:
    """Take a product off sale. Products are never hard-deleted: orders and the ledger
    keep referring to their variants."""
    return update_product(product=product, is_active=False)
