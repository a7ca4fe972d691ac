"""Reads of the inventory: which warehouses serve a destination, stock on hand, the ledger."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, cast

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from apps.catalog.models import ProductVariant
from apps.inventory.exceptions import UnknownWarehouse
from apps.inventory.models import Stock, StockMovement, Warehouse
from ecommerce.db import prepared
from ecommerce.db.joined import Joined

DEFAULT_WAREHOUSE_SLUG = "main"


def serving(country: str | None, *, warehouse: str = "pk") -> Q:
    """The rule for "this warehouse may ship to `country`", as a filter on the warehouse
    reached through `warehouse` (`"pk"` on Warehouse, `"warehouse_id"` on Stock).

    Active, and either without a shipping zone (it serves every destination) or in a zone
    listing `country`; with no destination given (`None` or blank) every active warehouse
    serves. Zones are read in the same statement, so a change made in the admin applies to
    the very next order: there is no cache to go stale.
    """
    prefix = "" if warehouse == "pk" else warehouse.removesuffix("_id") + "__"
    rule = Q(**{f"{prefix}is_active": True})
    if not country:
        return rule
    code = country.upper()
    zones = Warehouse.shipping_zones.through.objects.filter(warehouse_id=OuterRef(warehouse))
    if connection.vendor == "postgresql":
        listing = zones.filter(shippingzone__countries__contains=[code])
    else:  # SQLite has no JSON containment; codes are validated, so '"DE"' is one element
        listing = zones.filter(shippingzone__countries__icontains=f'"{code}"')
    return rule & (~Exists(zones) | Exists(listing))


def warehouses_for(country: str | None) -> list[Warehouse]:
    """Active warehouses that may ship to `country`, in allocation order (priority, id).

    See `serving` for the rule. One query; a database without any warehouse gets the
    default one made.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            prepared.execute(cursor, _warehouses_for_sql((country or "").upper()))
            rows = cursor.fetchall()
        warehouses = [cast(Warehouse, _WAREHOUSE.instance(row, 0)) for row in rows]
    else:
        warehouses = list(Warehouse.objects.filter(serving(country)).order_by("priority", "pk"))
    if not warehouses and not Warehouse.objects.exists():
        return [default_warehouse()]
    return warehouses


# A warehouse as `warehouses_for` reads it: every column, in the model's field order.
_WAREHOUSE = Joined(Warehouse, "")


@functools.lru_cache(maxsize=512)
def _warehouses_for_sql(country: str) -> tuple[str, tuple[Any, ...]]:
    """`warehouses_for`'s statement for one destination ("": none), compiled by the ORM
    once: compiling its two EXISTS cost ten times the CPU of running it. The statement
    reads the zones when it runs, so nothing here goes stale."""
    return (
        Warehouse.objects.filter(serving(country or None))
        .order_by("priority", "pk")
        .values_list(*_WAREHOUSE.attnames)
        .query.sql_with_params()
    )


def warehouses() -> QuerySet[Warehouse]:
    """Every warehouse, active or not, in allocation order, with its zones."""
    return Warehouse.objects.prefetch_related("shipping_zones").order_by("priority", "pk")


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


_STOCK_BY_VARIANT_SQL = (
    "SELECT variant_id, SUM(quantity) FROM inventory_stock WHERE variant_id = ANY(%s)"
)


def stock_by_variant(
    variant_ids: Iterable[int], *, warehouse_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """Units on hand per variant, summed over the warehouses given (all when None)."""
    if connection.vendor == "postgresql":
        # Every priced cart reads it: written out, not compiled each time.
        sql = _STOCK_BY_VARIANT_SQL + (
            " AND warehouse_id = ANY(%s)" if warehouse_ids is not None else ""
        )
        params: list[Any] = [list(variant_ids)]
        if warehouse_ids is not None:
            params.append(list(warehouse_ids))
        with connection.cursor() as cursor:
            prepared.execute(cursor, (sql + " GROUP BY variant_id", params))
            return dict(cursor.fetchall())
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
