"""Demo catalog for `manage.py seed_demo`: a few categories and products prod1..prod20."""

from __future__ import annotations

from decimal import Decimal
from typing import TextIO

from django.db import transaction

from apps.catalog import services
from apps.catalog.models import Category, ProductVariant

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
    stdout.write(f"  catalog   {len(CATEGORIES)} categories, prod1..prod20 ({created} new)\n")
