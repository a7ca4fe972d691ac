"""Writes of shipping zones: the sets of countries warehouses serve."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from apps.shipping.exceptions import ShippingZoneNotFound, ShippingZoneSlugTaken
from apps.shipping.models import ShippingZone, validate_countries
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

# The slug names the zone in URLs and in warehouse payloads: it is fixed once created.
ZONE_FIELDS = frozenset({"name", "countries"})


def _codes(countries: Iterable[str]) -> list[str]:
    """`countries` in capitals, sorted, each once; refused (django's ValidationError) when
    a code is not two ASCII letters or there are too many."""
    codes = sorted({code.upper() for code in countries})
    validate_countries(codes)
    return codes


def create_zone(*, name: str, slug: str, countries: Iterable[str] = ()) -> ShippingZone:
    """A new zone listing `countries` (stored in capitals, sorted, each once). Warehouses
    serve it once they link it.

    Raises ShippingZoneSlugTaken, django's ValidationError (a bad code); nothing is stored then.
    """
    codes = _codes(countries)
    try:
        with transaction.atomic():
            zone = ShippingZone.objects.create(name=name, slug=slug, countries=codes)
    except IntegrityError:
        raise ShippingZoneSlugTaken(slug=slug) from None
    logger.info("shipping_zone_created", zone=slug, countries=codes)
    return zone


def update_zone(*, slug: str, changes: dict[str, Any]) -> ShippingZone:
    """Rename the zone `slug` or replace its countries; keys left out stay as they are.

    Allocation reads zones in its locking statement, so the next order follows the change.
    Raises ShippingZoneNotFound, InvalidInput (a field that cannot change), django's
    ValidationError (a bad code).
    """
    unknown = set(changes) - ZONE_FIELDS
    if unknown:
        raise InvalidInput(f"Not a changeable zone field: {', '.join(sorted(unknown))}.")
    fields = dict(changes)
    if "countries" in fields:
        fields["countries"] = _codes(fields["countries"])
    with transaction.atomic():
        # NO KEY UPDATE: linking the zone to a warehouse (KEY SHARE) need not wait for this.
        zone = ShippingZone.objects.select_for_update(no_key=True).filter(slug=slug).first()
        if zone is None:
            raise ShippingZoneNotFound(zone=slug)
        for field, value in fields.items():
            setattr(zone, field, value)
        if fields:
            zone.save(update_fields=[*sorted(fields), "updated_at"])
    logger.info("shipping_zone_updated", zone=slug, fields=sorted(fields))
    return zone


def save_zone(*, slug: str, name: str, countries: Iterable[str]) -> ShippingZone:
    """Create the zone `slug`, or replace its name and countries: an upsert over the
    unique slug (the admin's save). Codes are stored in capitals, sorted, each once.

    Raises django's ValidationError for a code that is not two ASCII letters.
    """
    codes = _codes(countries)
    with transaction.atomic():
        zone, _ = ShippingZone.objects.update_or_create(
            slug=slug, defaults={"name": name[:120], "countries": codes}
        )
    return zone
