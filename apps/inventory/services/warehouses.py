"""Warehouse writes: create one, change it, and the countries it serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.inventory.exceptions import WarehouseNotFound, WarehouseSlugTaken
from apps.inventory.models import Warehouse
from apps.shipping import services as shipping_services
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

WAREHOUSE_FIELDS = frozenset({"name", "slug", "priority", "is_active"})


def _serve(warehouse: Warehouse, countries: Sequence[str] | None) -> None:
    """Make `warehouse` serve exactly `countries` (None: every destination).

    The countries live in a zone of the warehouse's own (`warehouse-<id>`), which replaces
    any zone it had; with None it leaves every zone and serves everywhere.
    """
    if countries is None:
        warehouse.shipping_zones.clear()
        return
    if not countries:
        raise InvalidInput("A warehouse serves at least one country, or every one (null).")
    zone = shipping_services.save_zone(
        slug=f"warehouse-{warehouse.pk}", name=f"Served by {warehouse.name}", countries=countries
    )
    warehouse.shipping_zones.set([zone])


def create_warehouse(
    *,
    name: str,
    slug: str,
    priority: int = 100,
    is_active: bool = True,
    countries: Sequence[str] | None = None,
    actor: Any = None,
) -> Warehouse:
    """A new warehouse serving `countries` (None: every destination). It holds no stock
    until something is received into it.

    Raises WarehouseSlugTaken, InvalidInput (an empty country list).
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                warehouse = Warehouse.objects.create(
                    name=name, slug=slug, priority=priority, is_active=is_active
                )
        except IntegrityError:
            raise WarehouseSlugTaken(slug=slug) from None
        _serve(warehouse, countries)
    logger.info(
        "warehouse_created",
        warehouse=warehouse.slug,
        priority=priority,
        is_active=is_active,
        countries=sorted(countries) if countries is not None else None,
        actor_id=getattr(actor, "pk", None),
    )
    return warehouse


def update_warehouse(*, slug: str, changes: dict[str, Any], actor: Any = None) -> Warehouse:
    """Change a warehouse's name, slug, priority, activity and, under "countries", the
    countries it serves (None: every destination); keys left out stay as they are.

    Allocation reads warehouses and zones in its locking statement, so the next order
    already follows the change; stock already taken stays where it was taken from.
    Raises WarehouseNotFound, WarehouseSlugTaken, InvalidInput.
    """
    fields = {key: value for key, value in changes.items() if key != "countries"}
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
        if "countries" in changes:
            _serve(warehouse, changes["countries"])
    logger.info(
        "warehouse_updated",
        warehouse=warehouse.slug,
        fields=sorted(changes),
        actor_id=getattr(actor, "pk", None),
    )
    return warehouse
