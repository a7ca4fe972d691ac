"""Factories for categories and products; stock always arrives through the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory

from apps.catalog import services
from apps.catalog.models import Category, Product


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


def make_product(
    *,
    sku: str | None = None,
    stock: int = 0,
    price: str | Decimal = "10.00",
    category: Category | None = None,
    is_active: bool = True,
    name: str | None = None,
    **extra: Any,
) -> Product:
    """Create a product through the service, so the ledger holds its initial stock."""
    make_product.counter += 1  # type: ignore[attr-defined]
    sku = sku or f"sku{make_product.counter}"  # type: ignore[attr-defined]
    return services.create_product(
        sku=sku,
        name=name or f"Product {sku}",
        price=Decimal(str(price)),
        category=category,
        is_active=is_active,
        initial_stock=stock,
        **extra,
    )


make_product.counter = 0  # type: ignore[attr-defined]
