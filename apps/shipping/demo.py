"""Demo shipping for `manage.py seed_demo`: zones for Germany, the rest of the EU and a few
countries beyond, each with methods in the store's currency.

The demo warehouse links no zone, so it serves every destination; the zones here decide
only which methods a cart is offered. Amounts are written in a two-place currency and
scaled by 100 for a zero-decimal store currency (4.90 becomes 490). Safe to re-run: a zone
(by slug) or a method (by zone, name and currency) that exists is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TextIO

from django.conf import settings
from django.db import transaction

from apps.shipping import services
from apps.shipping.models import ShippingMethod, ShippingZone
from ecommerce.money import THREE_DECIMAL_CURRENCIES, minor_unit

EU_WITHOUT_GERMANY = [
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
]


@dataclass(frozen=True)
class DemoMethod:
    name: str
    kind: str = "flat"
    price: str = "0"
    free_over: str | None = None
    # (lower, upper or None, price); weight bounds in grams
    bands: tuple[tuple[str, str | None, str], ...] = ()
    sort_order: int = 0


@dataclass(frozen=True)
class DemoZone:
    name: str
    slug: str
    countries: tuple[str, ...]
    methods: tuple[DemoMethod, ...] = field(default=())


ZONES = (
    DemoZone(
        "Germany",
        "germany",
        ("DE",),
        (
            DemoMethod("Standard", price="4.90", free_over="50.00", sort_order=1),
            DemoMethod(
                "Express",
                kind="weight",
                bands=(("0", "2000", "9.90"), ("2000", "10000", "14.90"), ("10000", None, "24.90")),
                sort_order=2,
            ),
        ),
    ),
    DemoZone(
        "EU",
        "eu",
        tuple(EU_WITHOUT_GERMANY),
        (DemoMethod("Standard", price="9.90", free_over="100.00", sort_order=1),),
    ),
    DemoZone(
        "International",
        "international",
        ("AU", "CA", "CH", "GB", "JP", "NO", "US"),
        (
            DemoMethod(
                "International",
                kind="price",
                bands=(("0", "150.00", "19.90"), ("150.00", None, "9.90")),
                sort_order=1,
            ),
        ),
    ),
)


def _amount(text: str, currency: str) -> Decimal:
    return Decimal(text) * (100 if minor_unit(currency) == 0 else 1)


def _band(band: tuple[str, str | None, str], kind: str, currency: str) -> services.BandSpec:
    """Weight bounds are grams, whatever the currency; price bounds scale like amounts."""
    lower, upper, price = band

    def bound(text: str) -> Decimal:
        return Decimal(text) if kind == "weight" else _amount(text, currency)

    return services.BandSpec(
        lower=bound(lower),
        upper=None if upper is None else bound(upper),
        price=_amount(price, currency),
    )


@transaction.atomic
def seed(*, stdout: TextIO) -> None:
    currency = settings.STORE_CURRENCY.upper()
    if currency in THREE_DECIMAL_CURRENCIES:
        stdout.write(f"  shipping  skipped: {currency} amounts cannot be stored\n")
        return
    new_zones = new_methods = methods = 0
    for demo in ZONES:
        zone = ShippingZone.objects.filter(slug=demo.slug).first()
        if zone is None:
            zone = services.create_zone(name=demo.name, slug=demo.slug, countries=demo.countries)
            new_zones += 1
        for method in demo.methods:
            methods += 1
            if ShippingMethod.objects.filter(
                zone=zone, name__iexact=method.name, currency=currency
            ).exists():
                continue
            services.create_method(
                zone=zone.slug,
                name=method.name,
                kind=method.kind,
                price=_amount(method.price, currency),
                currency=currency,
                free_over=None if method.free_over is None else _amount(method.free_over, currency),
                sort_order=method.sort_order,
                bands=[_band(band, method.kind, currency) for band in method.bands],
            )
            new_methods += 1
    stdout.write(
        f"  shipping  {len(ZONES)} zones ({new_zones} new), {methods} methods in {currency} "
        f"({new_methods} new)\n"
    )
