"""Writes of shipping zones (the sets of countries warehouses serve) and of the methods
that ship to them, with their rate bands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.shipping.exceptions import (
    ShippingMethodNameTaken,
    ShippingMethodNotFound,
    ShippingZoneNotFound,
    ShippingZoneSlugTaken,
)
from apps.shipping.models import (
    BANDED_KINDS,
    ShippingMethod,
    ShippingMethodKind,
    ShippingRateBand,
    ShippingZone,
    band_errors,
    method_errors,
    validate_countries,
)
from ecommerce import audit
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


# --- shipping methods -------------------------------------------------------------------

# Every field a method write may set; the zone is fixed once created.
METHOD_FIELDS = frozenset(
    {"name", "kind", "price", "currency", "free_over", "is_active", "sort_order", "bands"}
)
# Bounds on one method, so one request cannot cost much.
MAX_BANDS = 50


@dataclass(frozen=True)
class BandSpec:
    """One rate band: [lower, upper) in grams (weight) or money (price); upper None is open."""

    lower: Decimal
    upper: Decimal | None
    price: Decimal


def _check_method(
    *,
    kind: str,
    price: Decimal,
    currency: str,
    free_over: Decimal | None,
    bands: Sequence[BandSpec],
) -> None:
    """Refuse a method that could not be stored or quoted as given.

    Raises django's ValidationError by field; a band's problem names the band (1-based).
    """
    errors: dict[str, Any] = {}
    if kind not in ShippingMethodKind.values:
        errors["kind"] = f"Give one of: {', '.join(ShippingMethodKind.values)}."
    else:
        errors.update(method_errors(kind=kind, price=price, currency=currency, free_over=free_over))
    if kind == ShippingMethodKind.FLAT and bands:
        errors["bands"] = "A flat-rate method has no bands."
    elif kind in BANDED_KINDS and not bands:
        errors["bands"] = "A method priced by bands needs at least one band."
    elif len(bands) > MAX_BANDS:
        errors["bands"] = f"A method has at most {MAX_BANDS} bands."
    elif kind in BANDED_KINDS and "currency" not in errors:
        problems = [
            f"Band {number}, {field}: {message}"
            for number, band in enumerate(bands, start=1)
            for field, message in band_errors(
                kind=kind,
                currency=currency,
                lower=band.lower,
                upper=band.upper,
                price=band.price,
            ).items()
        ]
        if problems:
            errors["bands"] = problems
    if errors:
        raise ValidationError(errors)


def _store_bands(method: ShippingMethod, bands: Sequence[BandSpec]) -> None:
    ShippingRateBand.objects.bulk_create(
        ShippingRateBand(method=method, lower=band.lower, upper=band.upper, price=band.price)
        for band in bands
    )


def _name_taken(*, zone: ShippingZone, name: str, currency: str, other_than: int | None) -> bool:
    same = ShippingMethod.objects.filter(zone=zone, name__iexact=name, currency=currency)
    if other_than is not None:
        same = same.exclude(pk=other_than)
    return same.exists()


def create_method(
    *,
    zone: str,
    name: str,
    kind: str = ShippingMethodKind.FLAT,
    price: Decimal = Decimal("0"),
    currency: str | None = None,
    free_over: Decimal | None = None,
    is_active: bool = True,
    sort_order: int = 0,
    bands: Sequence[BandSpec] = (),
) -> ShippingMethod:
    """A new method shipping to the zone `zone` (its slug), with its bands; the currency
    defaults to the store's. Quotes offer it from the next read on.

    Raises ShippingZoneNotFound, ShippingMethodNameTaken (the zone has a method of that
    name, in any letter case, in that currency), django's ValidationError (an amount not
    exact to the currency, bands on a flat rate, a band whose upper bound is not above its
    lower); nothing is stored then.
    """
    code = (currency or settings.STORE_CURRENCY).upper()
    _check_method(kind=kind, price=price, currency=code, free_over=free_over, bands=bands)
    with transaction.atomic():
        zone_row = ShippingZone.objects.filter(slug=zone).first()
        if zone_row is None:
            raise ShippingZoneNotFound(zone=zone)
        if _name_taken(zone=zone_row, name=name, currency=code, other_than=None):
            raise ShippingMethodNameTaken(zone=zone, name=name, currency=code)
        try:
            with transaction.atomic():
                method = ShippingMethod.objects.create(
                    zone=zone_row,
                    name=name,
                    kind=kind,
                    price=price,
                    currency=code,
                    free_over=free_over,
                    is_active=is_active,
                    sort_order=sort_order,
                )
        except IntegrityError:
            if _name_taken(zone=zone_row, name=name, currency=code, other_than=None):
                raise ShippingMethodNameTaken(zone=zone, name=name, currency=code) from None
            raise
        _store_bands(method, bands)
    logger.info("shipping_method_created", method_id=method.pk, zone=zone, kind=kind)
    return method


def update_method(*, method_id: int, changes: dict[str, Any]) -> ShippingMethod:
    """Change the method `method_id`; keys left out stay as they are, and `bands`
    (a list of BandSpec) replaces every band. The whole method is checked as it will be,
    so a new currency or kind must suit the bands it keeps.

    Raises ShippingMethodNotFound, ShippingMethodNameTaken, InvalidInput (a field that
    cannot change), django's ValidationError; nothing changes then.
    """
    unknown = set(changes) - METHOD_FIELDS
    if unknown:
        raise InvalidInput(f"Not a changeable method field: {', '.join(sorted(unknown))}.")
    fields = {key: value for key, value in changes.items() if key != "bands"}
    if "currency" in fields:
        fields["currency"] = str(fields["currency"]).upper()
    with transaction.atomic():
        method = (
            ShippingMethod.objects.select_for_update(no_key=True)
            .select_related("zone")
            .filter(pk=method_id)
            .first()
        )
        if method is None:
            raise ShippingMethodNotFound(method_id=method_id)
        for field, value in fields.items():
            setattr(method, field, value)
        bands: Sequence[BandSpec] = (
            changes["bands"]
            if "bands" in changes
            else [
                BandSpec(lower=band.lower, upper=band.upper, price=band.price)
                for band in method.bands.order_by("lower", "pk")
            ]
        )
        _check_method(
            kind=method.kind,
            price=method.price,
            currency=method.currency,
            free_over=method.free_over,
            bands=bands,
        )
        if ({"name", "currency"} & set(fields)) and _name_taken(
            zone=method.zone, name=method.name, currency=method.currency, other_than=method.pk
        ):
            raise ShippingMethodNameTaken(
                zone=method.zone.slug, name=method.name, currency=method.currency
            )
        if fields:
            try:
                with transaction.atomic():
                    method.save(update_fields=[*sorted(fields), "updated_at"])
            except IntegrityError:
                if _name_taken(
                    zone=method.zone,
                    name=method.name,
                    currency=method.currency,
                    other_than=method.pk,
                ):
                    raise ShippingMethodNameTaken(
                        zone=method.zone.slug, name=method.name, currency=method.currency
                    ) from None
                raise
        if "bands" in changes:
            old_bands = [
                (band.lower, band.upper, band.price)
                for band in method.bands.order_by("lower", "pk")
            ]
            method.bands.all().delete()
            _store_bands(method, bands)
            audit.record_for(
                method,
                action="update",
                changes={
                    "bands": (old_bands, [(band.lower, band.upper, band.price) for band in bands])
                },
            )
    logger.info(
        "shipping_method_updated", method_id=method_id, fields=sorted(set(changes) & METHOD_FIELDS)
    )
    return method


def delete_method(*, method_id: int) -> None:
    """Delete the method `method_id` and its bands. Orders keep the method's name and
    price they were placed with; a cart that chose it is offered the others.

    Raises ShippingMethodNotFound.
    """
    with transaction.atomic():
        deleted, _ = ShippingMethod.objects.filter(pk=method_id).delete()
    if not deleted:
        raise ShippingMethodNotFound(method_id=method_id)
    logger.info("shipping_method_deleted", method_id=method_id)
