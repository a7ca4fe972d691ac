"""Reads of shipping zones and methods, and the quotes a cart's destination gets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from apps.shipping.exceptions import ShippingMethodNotFound, ShippingZoneNotFound
from apps.shipping.models import (
    ShippingMethod,
    ShippingMethodKind,
    ShippingRateBand,
    ShippingZone,
)
from ecommerce.money import round_money

ZERO = Decimal("0")


@dataclass(frozen=True)
class ShippingQuote:
    """What one method charges one cart: `price` as entered (gross or net, like catalog
    prices) with the currency's places; 0 with `free` when the subtotal reached the
    method's free-over threshold or its rate is nothing."""

    method_id: int
    name: str
    zone: str
    price: Decimal
    currency: str
    free: bool


def zones() -> QuerySet[ShippingZone]:
    """Every zone, by name (then slug, so equal names keep one order)."""
    return ShippingZone.objects.order_by("name", "slug")


def get_zone(*, slug: str) -> ShippingZone:
    """Raises ShippingZoneNotFound."""
    zone = ShippingZone.objects.filter(slug=slug).first()
    if zone is None:
        raise ShippingZoneNotFound(zone=slug)
    return zone


def _with_bands(queryset: QuerySet[ShippingMethod]) -> QuerySet[ShippingMethod]:
    bands = ShippingRateBand.objects.order_by("lower", "pk")
    return queryset.select_related("zone").prefetch_related(Prefetch("bands", queryset=bands))


def methods_of_zone(*, slug: str) -> list[ShippingMethod]:
    """The zone's methods, active or not, in display order, with zone and bands loaded.

    Raises ShippingZoneNotFound.
    """
    zone = get_zone(slug=slug)
    return list(
        _with_bands(ShippingMethod.objects.filter(zone=zone)).order_by("sort_order", "name", "pk")
    )


def get_method(*, method_id: int) -> ShippingMethod:
    """One method, active or not, with its zone and bands. Raises ShippingMethodNotFound."""
    method = _with_bands(ShippingMethod.objects.filter(pk=method_id)).first()
    if method is None:
        raise ShippingMethodNotFound(method_id=method_id)
    return method


def _serving(country: str) -> Q:
    """Zones listing `country` (codes are stored in capitals, validated two letters).

    PostgreSQL tests containment (`countries @> '["DE"]'`) in the statement; SQLite has
    no JSON containment, and as codes are validated `"DE"` in the text is one element.
    """
    if connection.vendor == "postgresql":
        return Q(zone__countries__contains=[country])
    return Q(zone__countries__icontains=f'"{country}"')


def _offered(
    methods: Iterable[ShippingMethod], *, weight_grams: int, subtotal: Decimal
) -> list[ShippingQuote]:
    """The quotes of the methods whose rule covers the cart (bands loaded, by lower bound)."""
    offered: list[tuple[int, str, int, ShippingQuote]] = []
    for method in methods:
        if method.kind == ShippingMethodKind.FLAT:
            price: Decimal | None = method.price
        else:
            measure = (
                Decimal(weight_grams) if method.kind == ShippingMethodKind.WEIGHT else subtotal
            )
            # Bands may overlap: the first covering band by lower bound (then id) sets the price.
            band = next((band for band in method.bands.all() if band.covers(measure)), None)
            price = None if band is None else band.price
        if price is None:
            continue
        if method.free_over is not None and subtotal >= method.free_over:
            price = ZERO
        # Stored with two places; a quote has the currency's own (800 JPY, 0.00 EUR).
        price = round_money(price, method.currency)
        quote = ShippingQuote(
            method_id=method.pk,
            name=method.name,
            zone=method.zone.slug,
            price=price,
            currency=method.currency,
            free=price == 0,
        )
        offered.append((method.sort_order, method.name, method.pk, quote))
    offered.sort(key=lambda row: (row[3].price, row[0], row[1], row[2]))
    return [row[3] for row in offered]


def _candidates(*, country: str, currency: str) -> QuerySet[ShippingMethod]:
    return _with_bands(
        ShippingMethod.objects.filter(
            _serving(country.upper()), is_active=True, currency=currency.upper()
        )
    )


def quotes(
    *, country: str, currency: str, weight_grams: int, subtotal: Decimal
) -> list[ShippingQuote]:
    """The methods that ship a cart to `country` in `currency`, cheapest first (then by
    sort order, name and id).

    Active methods of every zone listing the country whose rule covers the cart: a
    banded method without a band covering the cart's weight (grams; a variant without
    a weight counts 0) or subtotal is not offered. A subtotal at or above `free_over`
    makes an offered method free. `subtotal` is on the entered basis, like catalog
    prices. Two queries: the methods with their zones, then their bands.
    """
    return _offered(
        _candidates(country=country, currency=currency),
        weight_grams=weight_grams,
        subtotal=subtotal,
    )


def quote(
    *, method_id: int, country: str, currency: str, weight_grams: int, subtotal: Decimal
) -> ShippingQuote | None:
    """What method `method_id` charges this cart, or None when it does not serve it
    (deleted, inactive, another zone or currency, no covering band). Same rules as
    `quotes`."""
    offered = _offered(
        _candidates(country=country, currency=currency).filter(pk=method_id),
        weight_grams=weight_grams,
        subtotal=subtotal,
    )
    return offered[0] if offered else None
