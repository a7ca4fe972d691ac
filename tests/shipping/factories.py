"""Shipping zones and methods, made through the shipping services (stored as the API
stores them)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from apps.shipping import services
from apps.shipping.models import ShippingMethod, ShippingZone


def make_zone(slug: str, countries: list[str], *, name: str | None = None) -> ShippingZone:
    return services.create_zone(name=name or f"Zone {slug}", slug=slug, countries=countries)


def make_method(
    zone: ShippingZone,
    name: str = "Standard",
    *,
    kind: str = "flat",
    price: str = "0",
    currency: str = "EUR",
    free_over: str | None = None,
    bands: Sequence[tuple[str, str | None, str]] = (),
    **extra: Any,
) -> ShippingMethod:
    """A method of `zone`; `bands` as (lower, upper or None, price)."""
    return services.create_method(
        zone=zone.slug,
        name=name,
        kind=kind,
        price=Decimal(price),
        currency=currency,
        free_over=None if free_over is None else Decimal(free_over),
        bands=[
            services.BandSpec(
                lower=Decimal(lower),
                upper=None if upper is None else Decimal(upper),
                price=Decimal(band_price),
            )
            for lower, upper, band_price in bands
        ],
        **extra,
    )
