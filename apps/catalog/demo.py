"""Demo catalog for `manage.py seed_demo`: categories, products prod1..prod20 (one variant
each, so the seed's order body `{"items":[{"id":"prod1","quantity":2}]}` works), and a
T-shirt in sizes and colours and a mug in colours, with their product types and
attributes. Stock goes into the default warehouse (no zones: it serves everywhere).

Safe to re-run: what exists (by slug or SKU, any letter case) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from django.db import transaction
from django.db.models.functions import Upper

from apps.catalog import services
from apps.catalog.models import Attribute, Category, ProductType, ProductVariant

CATEGORIES = (
    ("Apparel", "apparel", None),
    ("T-shirts", "t-shirts", "apparel"),
    ("Home", "home", None),
    ("Kitchen", "kitchen", "home"),
)
PRODUCT_NAMES = (
    "Classic T-shirt",
    "V-neck T-shirt",
    "Hoodie",
    "Rain jacket",
    "Wool socks",
    "Chef's knife",
    "Cast-iron pan",
    "Coffee grinder",
    "Teapot",
    "Cutting board",
)
CATEGORY_OF = ("t-shirts", "t-shirts", "apparel", "apparel", "apparel") + ("kitchen",) * 5

# (name, slug, input type, unit, choice values)
ATTRIBUTES = (
    ("Size", "size", "choice", "", ("S", "M", "L")),
    ("Colour", "colour", "choice", "", ("Black", "White", "Navy")),
    ("Material", "material", "text", "", ()),
    ("Capacity", "capacity", "number", "ml", ()),
)
# (name, slug, product attributes, variant attributes)
PRODUCT_TYPES = (
    ("T-shirt", "t-shirt", ("material",), ("size", "colour")),
    ("Mug", "mug", ("material", "capacity"), ("colour",)),
)


@dataclass(frozen=True)
class DemoProduct:
    name: str
    description: str
    category: str
    product_type: str
    attributes: dict[str, str]
    # (SKU, variant name, price, stock, variant attribute values)
    variants: tuple[tuple[str, str, str, int, dict[str, str]], ...]


VARIANT_PRODUCTS = (
    DemoProduct(
        name="Organic T-shirt",
        description="Organic cotton, in three sizes and two colours.",
        category="t-shirts",
        product_type="t-shirt",
        attributes={"material": "Organic cotton"},
        variants=tuple(
            (
                f"TEE-{colour[:3].upper()}-{size}",
                f"{size} / {colour}",
                "21.90" if size == "L" else "19.90",
                12,
                {"size": size.lower(), "colour": colour.lower()},
            )
            for colour in ("Black", "White")
            for size in ("S", "M", "L")
        ),
    ),
    DemoProduct(
        name="Enamel mug",
        description="Enamelled steel, 350 ml.",
        category="kitchen",
        product_type="mug",
        attributes={"material": "Enamelled steel", "capacity": "350"},
        variants=(
            ("MUG-WHI", "White", "12.00", 20, {"colour": "white"}),
            ("MUG-NAV", "Navy", "12.00", 15, {"colour": "navy"}),
        ),
    ),
)


def _seed_types() -> dict[str, ProductType]:
    attributes = {attribute.slug: attribute for attribute in Attribute.objects.all()}
    for name, slug, input_type, unit, values in ATTRIBUTES:
        if slug not in attributes:
            attributes[slug] = services.create_attribute(
                name=name,
                slug=slug,
                input_type=input_type,
                unit=unit,
                values=[services.ValueSpec(value) for value in values],
            )
    types = {product_type.slug: product_type for product_type in ProductType.objects.all()}
    for name, slug, product_level, variant_level in PRODUCT_TYPES:
        if slug not in types:
            types[slug] = services.create_product_type(
                name=name,
                slug=slug,
                product_attributes=[attributes[s] for s in product_level],
                variant_attributes=[attributes[s] for s in variant_level],
            )
    return types


@transaction.atomic
def seed(*, stdout: TextIO) -> None:
    by_slug: dict[str, Category] = {}
    for name, slug, parent in CATEGORIES:
        category = Category.objects.filter(slug=slug).first()
        if category is None:
            category = services.create_category(
                name=name, slug=slug, parent=by_slug.get(parent) if parent else None
            )
        by_slug[slug] = category
    created = 0
    for n in range(1, 21):
        sku = f"prod{n}"
        if ProductVariant.objects.filter(sku__iexact=sku).exists():
            continue
        index = (n - 1) % len(PRODUCT_NAMES)
        services.create_product(
            name=f"{PRODUCT_NAMES[index]} #{n}",
            description=f"Demo product {n}.",
            category=by_slug[CATEGORY_OF[index]],
            variants=[
                services.VariantSpec(
                    sku=sku, price=Decimal("4.99") + Decimal(n * 3), initial_stock=25 + 5 * n
                )
            ],
        )
        created += 1
    types = _seed_types()
    with_variants = 0
    for demo in VARIANT_PRODUCTS:
        skus = [sku.upper() for sku, *_ in demo.variants]
        if ProductVariant.objects.annotate(key=Upper("sku")).filter(key__in=skus).exists():
            continue  # seeded before (or someone sells one of these SKUs)
        services.create_product(
            name=demo.name,
            description=demo.description,
            category=by_slug[demo.category],
            product_type=types[demo.product_type],
            attributes=demo.attributes,
            variants=[
                services.VariantSpec(
                    sku=sku, name=name, price=Decimal(price), initial_stock=stock, attributes=values
                )
                for sku, name, price, stock, values in demo.variants
            ],
        )
        with_variants += 1
    stdout.write(
        f"  catalog   {len(CATEGORIES)} categories, prod1..prod20 ({created} new), "
        f"{len(VARIANT_PRODUCTS)} products in variants ({with_variants} new)\n"
    )
