"""The only code that writes the catalog: categories, products, their variants and
attribute values. Stock is not here: `apps.inventory.services` writes it.

A product's `price` and `currency` are those of its cheapest active variant; every write
to a variant recomputes them in the same transaction, so lists sort and filter on a column.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils.text import slugify

from apps.catalog import signals
from apps.catalog.cache import invalidate_products_on_commit
from apps.catalog.exceptions import (
    InvalidAttributes,
    InvalidCategory,
    InvalidPrice,
    SkuTaken,
    SlugTaken,
)
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductType,
    ProductVariant,
    store_currency,
)
from ecommerce.errors import InvalidInput
from ecommerce.money import amount_error
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

# Attribute slug -> the value to assign; None removes the attribute's value.
AttributeInput = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal
    name: str = ""
    attributes: AttributeInput = field(default_factory=dict)
    weight_grams: int | None = None
    is_active: bool = True
    initial_stock: int = 0


def check_price(price: Decimal, currency: str) -> None:
    """Refuse a price its currency cannot hold exactly (docs/pricing.md): 12.50 JPY, or
    any price in a three-decimal currency. Raises InvalidPrice."""
    reason = amount_error(price, currency)
    if reason is not None:
        raise InvalidPrice(price=price, currency=currency.upper(), reason=reason)


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
            number = Decimal(str(raw))
        except InvalidOperation:
            raise InvalidAttributes(f"{attribute.slug}: give a number.") from None
        # Bounds before normalize(), which overflows on exponents like 1e999999999.
        if not number.is_finite() or number.adjusted() >= 12 or number.adjusted() < -6:
            if number.is_zero() and number.is_finite():
                number = Decimal(0)
            else:
                raise InvalidAttributes(
                    f"{attribute.slug}: a number below 10^12, 6 decimals at most."
                )
        number = number.normalize()
        if number.as_tuple().exponent < -6:  # type: ignore[operator]
            raise InvalidAttributes(f"{attribute.slug}: a number below 10^12, 6 decimals at most.")
        text = format(number, "f")
        name = f"{text} {attribute.unit}".strip()
        slug = re.sub(r"[^0-9a-z-]", "-", text.lower())
    else:
        return _text_value(attribute, str(raw).strip())
    value, _ = AttributeValue.objects.get_or_create(
        attribute=attribute, slug=slug, defaults={"name": name, "number": number}
    )
    return value


def _text_value(attribute: Attribute, text: str) -> AttributeValue:
    """The value row holding exactly `text`, made on first use. Two texts whose slugs
    collide (`Red wine`, `red-wine`, or any two texts slugify empties) get distinct rows:
    the later one's slug carries a digest of its text."""
    existing = attribute.values.filter(name=text).first()
    if existing is not None:
        return existing
    slug = slugify(text)[:180]
    if not slug or attribute.values.filter(slug=slug).exists():
        digest = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        slug = f"{slug}-{digest}" if slug else digest
    value, _ = AttributeValue.objects.get_or_create(
        attribute=attribute, slug=slug, defaults={"name": text}
    )
    return value


def _resolve(
    allowed: Sequence[Attribute], given: AttributeInput, *, scope: str
) -> tuple[list[tuple[Attribute, AttributeValue]], list[Attribute]]:
    """The (attribute, value) pairs to assign and the attributes to clear (given None).

    Raises InvalidAttributes for an attribute the product type does not declare at this
    scope, or a value its attribute refuses.
    """
    by_slug = {attribute.slug: attribute for attribute in allowed}
    unknown = sorted(set(given) - set(by_slug))
    if unknown:
        raise InvalidAttributes(
            f"The product type has no {scope} attribute {', '.join(unknown)}"
            + (f" (it has: {', '.join(sorted(by_slug))})." if by_slug else ".")
        )
    pairs = [
        (by_slug[slug], _value_for(by_slug[slug], raw))
        for slug, raw in given.items()
        if raw is not None
    ]
    cleared = [by_slug[slug] for slug, raw in given.items() if raw is None]
    return pairs, cleared


def _product_attributes(product_type: ProductType | None) -> list[Attribute]:
    return list(product_type.product_attributes.all()) if product_type else []


def _variant_attributes(product_type: ProductType | None) -> list[Attribute]:
    return list(product_type.variant_attributes.all()) if product_type else []


def _assign_product_values(product: Product, given: AttributeInput) -> None:
    if not given:
        return
    pairs, cleared = _resolve(_product_attributes(product.product_type), given, scope="product")
    AssignedProductAttribute.objects.filter(
        product=product, attribute__in=[attribute for attribute, _ in pairs] + cleared
    ).delete()
    AssignedProductAttribute.objects.bulk_create(
        AssignedProductAttribute(product=product, attribute=attribute, value=value)
        for attribute, value in pairs
    )


def _assign_variant_values(
    variant: ProductVariant, product_type: ProductType | None, given: AttributeInput
) -> None:
    if not given:
        return
    pairs, cleared = _resolve(_variant_attributes(product_type), given, scope="variant")
    AssignedVariantAttribute.objects.filter(
        variant=variant, attribute__in=[attribute for attribute, _ in pairs] + cleared
    ).delete()
    AssignedVariantAttribute.objects.bulk_create(
        AssignedVariantAttribute(variant=variant, attribute=attribute, value=value)
        for attribute, value in pairs
    )


def _drop_undeclared(product_ids: Sequence[int]) -> None:
    """Delete the attribute values of `product_ids` (and of their variants) that their
    product type no longer declares at that scope, so a product never shows a value its
    type does not have. Used when a product changes type and when a type drops an
    attribute (what Saleor does on unassigning an attribute from a type)."""
    if not product_ids:
        return
    declared_product = AssignedProductAttribute.objects.filter(
        product_id__in=product_ids,
        attribute__product_types=models.F("product__product_type"),
    )
    AssignedProductAttribute.objects.filter(product_id__in=product_ids).exclude(
        pk__in=declared_product.values("pk")
    ).delete()
    declared_variant = AssignedVariantAttribute.objects.filter(
        variant__product_id__in=product_ids,
        attribute__variant_product_types=models.F("variant__product__product_type"),
    )
    AssignedVariantAttribute.objects.filter(variant__product_id__in=product_ids).exclude(
        pk__in=declared_variant.values("pk")
    ).delete()


def _lock_product(product_id: int) -> None:
    """Lock the product row: every write that recomputes its price holds it first, so two
    concurrent variant changes recompute one after the other, each seeing the other's."""
    Product.objects.select_for_update().filter(pk=product_id).values_list("pk").first()


def refresh_price(product: Product) -> None:
    """Set the product's price and currency to its cheapest active variant's (or, with
    none active, its cheapest variant's).

    Caller holds the product's row lock (`_lock_product`) in the current transaction.
    """
    variants = ProductVariant.objects.filter(product_id=product.pk)
    cheapest = (
        variants.order_by("-is_active", "price", "pk").values_list("price", "currency").first()
    )
    if cheapest is None:
        return
    product.price, product.currency = cheapest
    Product.objects.filter(pk=product.pk).exclude(
        price=product.price, currency=product.currency
    ).update(price=product.price, currency=product.currency)


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

    Raises SkuTaken when a SKU exists in any letter case (or two of `variants` share one),
    InvalidAttributes for values its product type does not declare or accept; nothing is
    stored then. Each variant's `initial_stock` is received
    into the default warehouse in the same transaction (see apps.catalog.signals).
    """
    if not variants:
        raise InvalidInput("A product has at least one variant.")
    for spec in variants:
        check_price(spec.price, store_currency())
    seen: set[str] = set()
    for spec in variants:
        if spec.sku.upper() in seen:
            raise SkuTaken(sku=spec.sku)
        seen.add(spec.sku.upper())
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
    """Add a variant to a product. Raises SkuTaken, InvalidAttributes, InvalidPrice."""
    check_price(spec.price, product.currency)
    with transaction.atomic():
        _lock_product(product.pk)
        position = ProductVariant.objects.filter(product=product).count()
        variant = _create_variant(product, spec, sort_order=position)
        refresh_price(product)
        _receive_initial_stock([(variant, spec)], actor)
        invalidate_products_on_commit([product.pk], skus=[spec.sku])
    logger.info("variant_created", product_id=product.pk, sku=variant.sku)
    return variant


UPDATABLE_VARIANT_FIELDS = frozenset({"name", "price", "weight_grams", "is_active", "attributes"})


def update_variant(*, variant: ProductVariant, **fields: Any) -> ProductVariant:
    """Change a variant's name, price, weight, activity or attribute values (not its SKU).

    The product's price follows its cheapest active variant. An inactive variant leaves
    the public detail and cannot be ordered; its SKU no longer finds the product publicly.
    Raises InvalidAttributes, InvalidPrice; nothing is stored then.
    """
    unknown = set(fields) - UPDATABLE_VARIANT_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if "price" in fields:
        check_price(fields["price"], variant.currency)
    attributes = fields.pop("attributes", None)
    with transaction.atomic():
        _lock_product(variant.product_id)
        for name, value in fields.items():
            setattr(variant, name, value)
        if fields:
            variant.save(update_fields=[*fields, "updated_at"])
        product = variant.product
        if attributes is not None:
            _assign_variant_values(variant, product.product_type, attributes)
        refresh_price(product)
        # The public SKU lookup knows active variants only: a change of activity moves it.
        invalidate_products_on_commit(
            [variant.product_id], skus=[variant.sku] if "is_active" in fields else []
        )
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
    prices are per variant). A new product type drops the values, of the product and of
    its variants, that the new type does not declare; `attributes` given with it are
    checked against the new type. Raises InvalidAttributes, InvalidPrice; nothing is stored
    then.
    """
    unknown = set(fields) - UPDATABLE_PRODUCT_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not fields:
        return product
    price = fields.pop("price", None)
    attributes = fields.pop("attributes", None)
    retyped = "product_type" in fields and fields["product_type"] != product.product_type
    with transaction.atomic():
        _lock_product(product.pk)
        for name, value in fields.items():
            setattr(product, name, value)
        if fields:
            product.save(update_fields=[*fields, "updated_at"])
        if retyped:
            _drop_undeclared([product.pk])
        if attributes is not None:
            _assign_product_values(product, attributes)
        if price is not None:
            variants = list(ProductVariant.objects.filter(product=product)[:2])
            if len(variants) != 1:
                raise InvalidInput(
                    "This product has several variants: set the price of each variant."
                )
            check_price(price, variants[0].currency)
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


# --- Attributes and product types -------------------------------------------------------------


@dataclass(frozen=True)
class ValueSpec:
    """A choice value to declare: its name, and its slug (from the name when empty)."""

    name: str
    slug: str = ""
    sort_order: int | None = None


def _products_showing(attribute: Attribute) -> list[int]:
    """Ids of the products whose detail shows a value of `attribute`."""
    by_product = AssignedProductAttribute.objects.filter(attribute=attribute).values_list(
        "product_id", flat=True
    )
    by_variant = AssignedVariantAttribute.objects.filter(attribute=attribute).values_list(
        "variant__product_id", flat=True
    )
    return sorted({*by_product, *by_variant})


def _add_values(attribute: Attribute, values: Sequence[ValueSpec]) -> list[AttributeValue]:
    if values and attribute.input_type != Attribute.InputType.CHOICE:
        raise InvalidAttributes(
            f"{attribute.slug}: only choice attributes declare values; "
            f"{attribute.input_type} values are made as products use them."
        )
    slugs = [spec.slug or slugify(spec.name)[:200] for spec in values]
    if any(not slug for slug in slugs):
        raise InvalidAttributes(f"{attribute.slug}: give each value a slug (a-z, 0-9, -).")
    if len(set(slugs)) != len(slugs):
        twice = next(slug for slug in slugs if slugs.count(slug) > 1)
        raise SlugTaken(kind="value", slug=twice)
    start = attribute.values.count()
    rows = [
        AttributeValue(
            attribute=attribute,
            name=spec.name,
            slug=slug,
            sort_order=spec.sort_order if spec.sort_order is not None else start + index,
        )
        for index, (spec, slug) in enumerate(zip(values, slugs, strict=True))
    ]
    try:
        with transaction.atomic():
            return AttributeValue.objects.bulk_create(rows)
    except IntegrityError:
        taken = attribute.values.filter(slug__in=slugs).values_list("slug", flat=True).first()
        raise SlugTaken(kind="value", slug=taken or slugs[0]) from None


def create_attribute(
    *,
    name: str,
    slug: str,
    input_type: str = Attribute.InputType.CHOICE,
    unit: str = "",
    filterable: bool = True,
    values: Sequence[ValueSpec] = (),
) -> Attribute:
    """Declare an attribute, with its choice values. Raises SlugTaken, InvalidAttributes
    (values for an attribute that is not a choice); nothing is stored then."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                attribute = Attribute.objects.create(
                    name=name, slug=slug, input_type=input_type, unit=unit, filterable=filterable
                )
        except IntegrityError:
            raise SlugTaken(kind="attribute", slug=slug) from None
        _add_values(attribute, values)
    logger.info("attribute_created", slug=slug, values=len(values))
    return attribute


UPDATABLE_ATTRIBUTE_FIELDS = frozenset({"name", "unit", "filterable", "input_type"})


def update_attribute(*, attribute: Attribute, **fields: Any) -> Attribute:
    """Rename an attribute, change its unit, whether lists filter on it, or (while it has
    no values) its type. Retires the cached products that show it.

    Raises InvalidAttributes for a type change once values exist: they were made for the
    old type.
    """
    unknown = set(fields) - UPDATABLE_ATTRIBUTE_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not fields:
        return attribute
    with transaction.atomic():
        attribute = Attribute.objects.select_for_update().get(pk=attribute.pk)
        if fields.get("input_type", attribute.input_type) != attribute.input_type and (
            attribute.values.exists()
        ):
            raise InvalidAttributes(
                f"{attribute.slug} has values: its type cannot change from {attribute.input_type}."
            )
        for name, value in fields.items():
            setattr(attribute, name, value)
        attribute.save(update_fields=[*fields, "updated_at"])
        invalidate_products_on_commit(_products_showing(attribute))
    logger.info("attribute_updated", slug=attribute.slug, fields=sorted(fields))
    return attribute


def add_attribute_values(
    *, attribute: Attribute, values: Sequence[ValueSpec]
) -> list[AttributeValue]:
    """Declare more choice values of an attribute. Raises SlugTaken (a slug exists, or two
    of `values` share one), InvalidAttributes (not a choice attribute); nothing is stored
    then."""
    if not values:
        raise InvalidInput("Give at least one value.")
    with transaction.atomic():
        Attribute.objects.select_for_update().filter(pk=attribute.pk).first()
        created = _add_values(attribute, values)
        # No product shows a new value yet; list pages (and their facets) may.
        invalidate_products_on_commit(())
    logger.info("attribute_values_added", slug=attribute.slug, values=[v.slug for v in created])
    return created


def _check_type_attributes(
    product_attributes: Sequence[Attribute], variant_attributes: Sequence[Attribute]
) -> None:
    both = sorted({a.slug for a in product_attributes} & {a.slug for a in variant_attributes})
    if both:
        raise InvalidAttributes(
            f"An attribute is declared for products or for variants, not both: {', '.join(both)}."
        )


def create_product_type(
    *,
    name: str,
    slug: str,
    tax_class: str = "standard",
    product_attributes: Sequence[Attribute] = (),
    variant_attributes: Sequence[Attribute] = (),
) -> ProductType:
    """Declare a product type with the attributes of its products and of its variants.
    Raises SlugTaken, InvalidAttributes (one attribute at both levels)."""
    _check_type_attributes(product_attributes, variant_attributes)
    try:
        with transaction.atomic():
            product_type = ProductType.objects.create(name=name, slug=slug, tax_class=tax_class)
            product_type.product_attributes.set(product_attributes)
            product_type.variant_attributes.set(variant_attributes)
    except IntegrityError:
        raise SlugTaken(kind="product type", slug=slug) from None
    logger.info("product_type_created", slug=slug)
    return product_type


UPDATABLE_PRODUCT_TYPE_FIELDS = frozenset(
    {"name", "tax_class", "product_attributes", "variant_attributes"}
)


def update_product_type(*, product_type: ProductType, **fields: Any) -> ProductType:
    """Rename a product type, change its tax class or the attributes it declares.

    An attribute the type stops declaring loses its values on every product (or variant)
    of the type, so no product shows a value its type lacks. Retires the cached products
    of the type. Raises InvalidAttributes (one attribute at both levels).
    """
    unknown = set(fields) - UPDATABLE_PRODUCT_TYPE_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not fields:
        return product_type
    with transaction.atomic():
        product_type = ProductType.objects.select_for_update().get(pk=product_type.pk)
        product_attributes = fields.get(
            "product_attributes", list(product_type.product_attributes.all())
        )
        variant_attributes = fields.get(
            "variant_attributes", list(product_type.variant_attributes.all())
        )
        _check_type_attributes(product_attributes, variant_attributes)
        changed = [name for name in ("name", "tax_class") if name in fields]
        for name in changed:
            setattr(product_type, name, fields[name])
        if changed:
            product_type.save(update_fields=[*changed, "updated_at"])
        if "product_attributes" in fields:
            product_type.product_attributes.set(product_attributes)
        if "variant_attributes" in fields:
            product_type.variant_attributes.set(variant_attributes)
        product_ids = list(
            Product.objects.filter(product_type=product_type).values_list("pk", flat=True)
        )
        _drop_undeclared(product_ids)
        invalidate_products_on_commit(product_ids)
    logger.info("product_type_updated", slug=product_type.slug, fields=sorted(fields))
    return product_type
