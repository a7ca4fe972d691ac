"""Reads of shipping zones."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.shipping.exceptions import ShippingZoneNotFound
from apps.shipping.models import ShippingZone


def zones() -> QuerySet[ShippingZone]:
    """Every zone, by name (then slug, so equal names keep one order)."""
    return ShippingZone.objects.order_by("name", "slug")


def get_zone(*, slug: str) -> ShippingZone:
    """Raises ShippingZoneNotFound."""
    zone = ShippingZone.objects.filter(slug=slug).first()
    if zone is None:
        raise ShippingZoneNotFound(zone=slug)
    return zone
