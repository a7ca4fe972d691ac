"""Factories for categories, products and variants; stock always arrives through the
ledger, into the default warehouse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory

from apps.catalog import services
from apps.catalog.models import Category, Product, ProductVariant


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
    """A product with one variant, created through the service, so the ledger holds its
    initial stock. The product carries `sku` and `variant` for the tests' convenience."""
    make_product.counter += 1  # type: ignore[attr-defined]
    sku = sku or f"sku{make_product.counter}"  # type: ignore[attr-defined]
    product = services.create_product(
        name=name or f"Product {sku}",
        category=category,
        is_active=is_active,
        variants=[services.VariantSpec(sku=sku, price=Decimal(str(price)), initial_stock=stock)],
        **extra,
    )
    product.variant = ProductVariant.objects.get(product=product)  # type: ignore[attr-defined]
    product.sku = product.variant.sku  # type: ignore[attr-defined]
    return product


make_product.counter = 0  # type: ignore[attr-defined]
