"""Warehouses with optional zones, and stock placed in them through the ledger."""

from __future__ import annotations

from apps.inventory import services
from apps.inventory.models import Warehouse
from tests.shipping.factories import make_zone


def make_warehouse(
    slug: str, *, priority: int = 10, countries: list[str] | None = None, is_active: bool = True
) -> Warehouse:
    """A warehouse; with `countries`, linked to a zone `zone-<slug>` listing them (none:
    it serves every destination)."""
    warehouse = Warehouse.objects.create(
        name=f"Warehouse {slug}", slug=slug, priority=priority, is_active=is_active
    )
    if countries is not None:
        warehouse.shipping_zones.add(make_zone(f"zone-{slug}", countries))
    return warehouse


def put_stock(variant_id: int, warehouse: Warehouse, quantity: int) -> None:
    """Receive `quantity` units of a variant into `warehouse`, through the ledger."""
    services.restock(variant_id=variant_id, quantity=quantity, warehouse=warehouse, note="test")
