"""Warehouse writes: create one, change it, and the shipping zones it serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.inventory.exceptions import UnknownShippingZone, WarehouseNotFound, WarehouseSlugTaken
from apps.inventory.models import Warehouse
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

WAREHOUSE_FIELDS = frozenset({"name", "slug", "priority", "is_active"})


def _serve(warehouse: Warehouse, zones: Sequence[str]) -> None:
    """Make `warehouse` serve exactly the zones slugged `zones`; none: every destination.

    Zones belong to the shipping app, which manages them (/api/shipping-zones); the
    warehouse only links them, through its own relation, so inventory never imports it.
    Raises UnknownShippingZone naming every slug that matches no zone.
    """
    zone_model = warehouse.shipping_zones.model
    found = list(zone_model.objects.filter(slug__in=zones)) if zones else []
    unknown = sorted(set(zones) - {zone.slug for zone in found})
    if unknown:
        raise UnknownShippingZone(zones=unknown)
    warehouse.shipping_zones.set(found)


def create_warehouse(
    *,
    name: str,
    slug: str,
    priority: int = 100,
    is_active: bool = True,
    zones: Sequence[str] = (),
    actor: Any = None,
) -> Warehouse:
    """A new warehouse serving the countries of the shipping zones slugged `zones` (none:
    every destination). It holds no stock until something is received into it.

    Raises WarehouseSlugTaken, UnknownShippingZone; nothing is stored then.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                warehouse = Warehouse.objects.create(
                    name=name, slug=slug, priority=priority, is_active=is_active
                )
        except IntegrityError:
            raise WarehouseSlugTaken(slug=slug) from None
        _serve(warehouse, zones)
    logger.info(
        "warehouse_created",
        warehouse=warehouse.slug,
        priority=priority,
        is_active=is_active,
        zones=sorted(zones),
        actor_id=getattr(actor, "pk", None),
    )
    return warehouse


def update_warehouse(*, slug: str, changes: dict[str, Any], actor: Any = None) -> Warehouse:
    """Change a warehouse's name, slug, priority, activity and, under "zones", the slugs
    of the shipping zones it serves (none: every destination); keys left out stay as they are.

    Allocation reads warehouses and zones in its locking statement, so the next order
    already follows the change; stock already taken stays where it was taken from.
    Raises WarehouseNotFound, WarehouseSlugTaken, UnknownShippingZone, InvalidInput (not
    a warehouse field); nothing is changed then.
    """
    fields = {key: value for key, value in changes.items() if key != "zones"}
    unknown = set(fields) - WAREHOUSE_FIELDS
    if unknown:
        raise InvalidInput(f"Not a warehouse field: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        # NO KEY UPDATE: a stock row being inserted for this warehouse (a first restock)
        # takes KEY SHARE on it and need not wait for this edit.
        warehouse = Warehouse.objects.select_for_update(no_key=True).filter(slug=slug).first()
        if warehouse is None:
            raise WarehouseNotFound(warehouse=slug)
        for field, value in fields.items():
            setattr(warehouse, field, value)
        if fields:
            try:
                with transaction.atomic():
                    warehouse.save(update_fields=[*sorted(fields), "updated_at"])
            except IntegrityError:
                raise WarehouseSlugTaken(slug=fields.get("slug", slug)) from None
        if "zones" in changes:
            _serve(warehouse, changes["zones"])
    logger.info(
        "warehouse_updated",
        warehouse=warehouse.slug,
        fields=sorted(changes),
        actor_id=getattr(actor, "pk", None),
    )
    return warehouse
