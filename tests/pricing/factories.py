"""Factories for tax rates, vouchers and promotions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apps.pricing.models import Promotion, TaxClass, TaxRate, Voucher


def tax_class(slug: str = "standard") -> TaxClass:
    """The tax class `slug` (the migration's three come back after a flush; others are new)."""
    return TaxClass.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def set_rate(country: str, slug: str, rate: str | Decimal) -> TaxRate:
    return TaxRate.objects.update_or_create(
        country=country, tax_class=tax_class(slug), defaults={"rate": Decimal(str(rate))}
    )[0]


def make_voucher(
    code: str = "SAVE10",
    *,
    kind: str = Voucher.Kind.PERCENTAGE,
    value: str | Decimal = "10",
    used_count: int = 0,
    products: list[Any] = (),  # type: ignore[assignment]
    categories: list[Any] = (),  # type: ignore[assignment]
    **fields: Any,
) -> Voucher:
    voucher = Voucher.objects.create(code=code, kind=kind, value=Decimal(str(value)), **fields)
    if used_count:
        Voucher.objects.filter(pk=voucher.pk).update(used_count=used_count)
        voucher.refresh_from_db()
    voucher.products.set(products)
    voucher.categories.set(categories)
    return voucher


def make_promotion(
    name: str = "Sale",
    *,
    kind: str = Promotion.Kind.PERCENTAGE,
    value: str | Decimal = "10",
    products: list[Any] = (),  # type: ignore[assignment]
    categories: list[Any] = (),  # type: ignore[assignment]
    **fields: Any,
) -> Promotion:
    promotion = Promotion.objects.create(name=name, kind=kind, value=Decimal(str(value)), **fields)
    promotion.products.set(products)
    promotion.categories.set(categories)
    return promotion
