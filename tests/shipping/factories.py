"""Shipping zones, made through the shipping services (codes stored as the API stores them)."""

from __future__ import annotations

from apps.shipping import services
from apps.shipping.models import ShippingZone


def make_zone(slug: str, countries: list[str], *, name: str | None = None) -> ShippingZone:
    return services.create_zone(name=name or f"Zone {slug}", slug=slug, countries=countries)
