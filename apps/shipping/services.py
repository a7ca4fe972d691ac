"""Writes of shipping zones that other apps ask for."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from apps.shipping.models import ShippingZone, validate_countries


def save_zone(*, slug: str, name: str, countries: Iterable[str]) -> ShippingZone:
    """Create the zone `slug`, or replace its name and countries: an upsert over the
    unique slug. Codes are stored in capitals, sorted, each once.

    Raises django's ValidationError for a code that is not two ASCII letters.
    """
    codes = sorted({code.upper() for code in countries})
    validate_countries(codes)
    with transaction.atomic():
        zone, _ = ShippingZone.objects.update_or_create(
            slug=slug, defaults={"name": name[:120], "countries": codes}
        )
    return zone
