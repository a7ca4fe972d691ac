"""Reads of shipping zones and methods, and the quotes a cart's destination gets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from apps.shipping.exceptions import ShippingMethodNotFound, ShippingZoneNotFound
from apps.shipping.models import (
    ShippingMethod,
    ShippingMethodKind,
    ShippingRateBand,
    ShippingZone,
)
from ecommerce.db import prepared
from ecommerce.db.joined import Joined, link
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
    methods: Iterable[tuple[ShippingMethod, Sequence[ShippingRateBand]]],
    *,
    weight_grams: int,
    subtotal: Decimal,
) -> list[ShippingQuote]:
    """The quotes of the methods whose rule covers the cart (each with its bands, by
    lower bound, then id)."""
    offered: list[tuple[int, str, int, ShippingQuote]] = []
    for method, bands in methods:
        if method.kind == ShippingMethodKind.FLAT:
            price: Decimal | None = method.price
        else:
            measure = (
                Decimal(weight_grams) if method.kind == ShippingMethodKind.WEIGHT else subtotal
            )
            # Bands may overlap: the first covering band by lower bound (then id) sets the price.
            band = next((band for band in bands if band.covers(measure)), None)
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


def _candidates(
    *, country: str, currency: str, method_id: int | None = None
) -> list[tuple[ShippingMethod, Sequence[ShippingRateBand]]]:
    """The active methods of the zones listing `country` in `currency` (only `method_id`
    when given), each with its zone loaded and its bands."""
    if connection.vendor == "postgresql":
        return _candidates_joined(country.upper(), currency.upper(), method_id)
    methods = _with_bands(
        ShippingMethod.objects.filter(
            _serving(country.upper()), is_active=True, currency=currency.upper()
        )
    )
    if method_id is not None:
        methods = methods.filter(pk=method_id)
    return [(method, list(method.bands.all())) for method in methods]


# `_candidates` on PostgreSQL: every priced cart reads it, and compiling the methods'
# select_related and their bands' prefetch cost several times the CPU of running them.
_METHOD = Joined(ShippingMethod, "m")
_ZONE = Joined(ShippingZone, "z")
_BAND = Joined(ShippingRateBand, "b")
_CANDIDATES_SQL = f"""
SELECT {_METHOD.columns()}, {_ZONE.columns()}
FROM shipping_shippingmethod m JOIN shipping_shippingzone z ON z.id = m.zone_id
WHERE m.is_active AND m.currency = %(currency)s AND z.countries @> %(countries)s::jsonb
  AND (%(method_id)s::bigint IS NULL OR m.id = %(method_id)s::bigint)
"""  # noqa: S608 (the select lists come from the models' fields)
_BANDS_SQL = f"""
SELECT {_BAND.columns()} FROM shipping_shippingrateband b
WHERE b.method_id = ANY(%s) ORDER BY b.lower, b.id
"""  # noqa: S608


def _candidates_joined(
    country: str, currency: str, method_id: int | None
) -> list[tuple[ShippingMethod, Sequence[ShippingRateBand]]]:
    params = {"currency": currency, "countries": json.dumps([country]), "method_id": method_id}
    with connection.cursor() as cursor:
        prepared.execute(cursor, (_CANDIDATES_SQL, params))
        rows = cursor.fetchall()
        methods = []
        for row in rows:
            method = cast(ShippingMethod, _METHOD.instance(row, 0))
            link(method, "zone", _ZONE.instance(row, _METHOD.width))
            methods.append(method)
        banded = [m.pk for m in methods if m.kind != ShippingMethodKind.FLAT]
        bands: dict[int, list[ShippingRateBand]] = {}
        if banded:
            prepared.execute(cursor, (_BANDS_SQL, [banded]))
            for row in cursor.fetchall():
                band = cast(ShippingRateBand, _BAND.instance(row, 0))
                bands.setdefault(band.method_id, []).append(band)
    return [(method, bands.get(method.pk, [])) for method in methods]


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
        _candidates(country=country, currency=currency, method_id=method_id),
        weight_grams=weight_grams,
        subtotal=subtotal,
    )
    return offered[0] if offered else None
