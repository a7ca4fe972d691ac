"""Reads of the inventory: which warehouses serve a destination, stock on hand, the ledger."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum

from apps.catalog.models import ProductVariant
from apps.inventory.exceptions import UnknownWarehouse
from apps.inventory.models import Stock, StockMovement, Warehouse

DEFAULT_WAREHOUSE_SLUG = "main"


def warehouses_for(country: str | None) -> list[Warehouse]:
    """Active warehouses that may ship to `country`, in allocation order (priority, id).

    A warehouse serves the countries of its shipping zones; one with no zone serves every
    destination, and with no destination given (`None` or blank) every active warehouse
    serves. One query.
    """
    warehouses = list(Warehouse.objects.filter(is_active=True).prefetch_related("shipping_zones"))
    if not warehouses:  # none at all: the default one is made; all inactive: none serves
        return [] if Warehouse.objects.exists() else [default_warehouse()]
    if not country:
        return warehouses
    code = country.upper()
    return [
        warehouse
        for warehouse in warehouses
        if not warehouse.shipping_zones.all()
        or any(zone.serves(code) for zone in warehouse.shipping_zones.all())
    ]


def default_warehouse() -> Warehouse:
    """Where stock goes when no warehouse is named: the first active one by priority.

    A database without any warehouse (a fresh embedded install, a flushed test database)
    gets the one inventory.0001 creates. Raises UnknownWarehouse when warehouses exist but
    none is active.
    """
    warehouse = Warehouse.objects.filter(is_active=True).order_by("priority", "pk").first()
    if warehouse is not None:
        return warehouse
    if Warehouse.objects.exists():
        raise UnknownWarehouse(warehouse="(none is active)")
    try:
        with transaction.atomic():
            warehouse, _ = Warehouse.objects.get_or_create(
                slug=DEFAULT_WAREHOUSE_SLUG, defaults={"name": "Main warehouse"}
            )
    except IntegrityError:  # created meanwhile by another process
        warehouse = Warehouse.objects.get(slug=DEFAULT_WAREHOUSE_SLUG)
    return warehouse


def warehouse_by_slug(slug: str | None) -> Warehouse:
    """The named active warehouse, or the default one. Raises UnknownWarehouse."""
    if not slug:
        return default_warehouse()
    warehouse = Warehouse.objects.filter(slug=slug, is_active=True).first()
    if warehouse is None:
        raise UnknownWarehouse(warehouse=slug)
    return warehouse


def stock_by_variant(
    variant_ids: Iterable[int], *, warehouse_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """Units on hand per variant, summed over the warehouses given (all when None)."""
    rows = Stock.objects.filter(variant_id__in=list(variant_ids))
    if warehouse_ids is not None:
        rows = rows.filter(warehouse_id__in=list(warehouse_ids))
    return dict(
        rows.values("variant_id").annotate(total=Sum("quantity")).values_list("variant_id", "total")
    )


def stock_levels(*, variant: ProductVariant) -> QuerySet[Stock]:
    """A variant's stock rows, one per warehouse that ever held it."""
    return (
        Stock.objects.filter(variant=variant)
        .select_related("warehouse")
        .order_by("warehouse__priority", "warehouse_id")
    )


def movements_of(
    *, variant: ProductVariant | None = None, product_id: int | None = None
) -> QuerySet[StockMovement]:
    """Ledger rows of a variant, or of every variant of a product, newest first."""
    movements = StockMovement.objects.select_related("actor", "warehouse", "variant")
    if variant is not None:
        movements = movements.filter(variant=variant)
    if product_id is not None:
        movements = movements.filter(variant__product_id=product_id)
    return movements
