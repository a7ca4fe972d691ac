"""Stock writes: allocation to orders, release, restock, adjustment and counts.

Every change locks the stock rows it touches, in primary-key order and in one statement,
applies all deltas with one UPDATE whose result the CHECK (quantity >= 0) guards, and
writes its ledger rows in the same transaction. Two allocations that touch the same rows
therefore lock them in the same order and never deadlock, whatever order their lines came
in and however many warehouses they span.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from apps.catalog.cache import invalidate_products_on_commit
from apps.catalog.models import ProductVariant
from apps.inventory import selectors
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import Stock, StockMovement, StockReason, Warehouse
from ecommerce import audit
from ecommerce.db import prepared
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

# The quantity column is a 32-bit integer: past this the database would refuse the UPDATE.
MAX_STOCK = 2_147_483_647
RELEASE_REASONS = frozenset({StockReason.CANCEL, StockReason.EXPIRY})


@dataclass(frozen=True)
class StockLine:
    variant_id: int
    quantity: int


@dataclass(frozen=True)
class _Change:
    stock_id: int
    warehouse_id: int
    variant_id: int
    delta: int


def merge_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """Sum quantities per variant, sorted by variant id."""
    totals: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.quantity <= 0:
            raise InvalidInput(f"Quantity must be positive, got {line.quantity}.")
        totals[line.variant_id] += line.quantity
    return [StockLine(variant_id=pk, quantity=qty) for pk, qty in sorted(totals.items())]


def _lock(*filters: Any, **lookups: Any) -> dict[int, tuple[int, int, int]]:
    """Lock the stock rows matching the filters in id order, in one statement;
    {id: (warehouse_id, variant_id, quantity)} as locked.

    Only the stock rows are locked (`of=("self",)`), never a joined warehouse row: that
    would queue every order behind every other one taking from the same warehouse.
    """
    rows = (
        Stock.objects.select_for_update(of=("self",))
        .filter(*filters, **lookups)
        .order_by("pk")
        .values_list("pk", "warehouse_id", "variant_id", "quantity")
    )
    return {pk: (warehouse, variant, quantity) for pk, warehouse, variant, quantity in rows}


def _apply(changes: Sequence[_Change]) -> dict[int, int]:
    """Add every change's delta to its (locked) row in one statement; {stock id: balance}.

    Retires the cached reads of the changed variants' products on commit.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s, %s)"] * len(changes))
        params: list[Any] = [now]
        for change in changes:
            params += [change.stock_id, change.delta]
        stock, variant = Stock._meta.db_table, ProductVariant._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {stock} AS s SET quantity = s.quantity + d.delta, "  # noqa: S608
                f"updated_at = %s FROM (VALUES {values}) AS d(id, delta), {variant} AS v "
                "WHERE s.id = d.id AND v.id = s.variant_id "
                "RETURNING s.id, s.quantity, v.product_id",
                params,
            )
            rows = cursor.fetchall()
    else:  # embedded SQLite: one writer at a time anyway
        rows = []
        for change in changes:
            row = Stock.objects.select_related("variant").get(pk=change.stock_id)
            row.quantity += change.delta
            row.save(update_fields=["quantity", "updated_at"])
            rows.append((row.pk, row.quantity, row.variant.product_id))
    invalidate_products_on_commit({product_id for _s, _q, product_id in rows})
    return {stock_id: quantity for stock_id, quantity, _p in rows}


def _write(
    changes: Sequence[_Change],
    balances: dict[int, int],
    *,
    reason: StockReason,
    reference: str,
    note: str,
    actor: Any,
) -> list[StockMovement]:
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return StockMovement.objects.bulk_create(
        StockMovement(
            warehouse_id=change.warehouse_id,
            variant_id=change.variant_id,
            delta=change.delta,
            balance=balances[change.stock_id],
            reason=reason,
            reference=reference,
            note=note,
            actor=actor,
        )
        for change in changes
    )


def _skus(variant_ids: Iterable[int]) -> dict[int, str]:
    return dict(ProductVariant.objects.filter(pk__in=list(variant_ids)).values_list("pk", "sku"))


def allocate(
    *,
    lines: Iterable[StockLine],
    reference: str,
    country: str | None = None,
    actor: Any = None,
    savepoint: bool = True,
) -> list[StockMovement]:
    """Take stock for every line from the warehouses serving `country`, or for none.

    Each line is taken from the serving warehouses in priority order, split across several
    when one cannot cover it. Raises OutOfStock naming each short SKU with what the serving
    warehouses hold; nothing changes then. The ledger rows name `reference` and their
    warehouse, which is how `release` later returns each unit where it came from.

    Caller may hold an outer transaction: the row locks last until it commits, so call
    this as late in that transaction as possible. A caller that abandons its whole
    transaction on OutOfStock passes `savepoint=False`.
    """
    merged = merge_lines(lines)
    with transaction.atomic(savepoint=savepoint):
        if connection.vendor == "postgresql":
            movements = _take_in_one_statement(
                merged, country=country, reference=reference, actor=actor
            )
            if movements is not None:
                _log_allocation(reference, country, merged, movements)
                return movements
        # Short somewhere (nothing was changed): work out what is missing, under the locks.
        # One statement picks the serving warehouses' rows and locks them in id order, so
        # two orders never deadlock whatever their lines and warehouses; the warehouses
        # and zones are read there too, never from a cache that could lag an admin edit.
        rows = _serving_rows_locked(country, merged)
        by_variant: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        for stock_id, warehouse_id, variant_id, quantity, priority in rows:
            by_variant[variant_id].append((priority, warehouse_id, stock_id, quantity))
        changes: list[_Change] = []
        short: dict[int, tuple[int, int]] = {}
        for line in merged:
            remaining = line.quantity
            taken: list[_Change] = []
            # Allocation order: warehouse priority, then warehouse id.
            for _priority, warehouse_id, stock_id, quantity in sorted(by_variant[line.variant_id]):
                if remaining == 0:
                    break
                take = min(quantity, remaining)
                if take > 0:
                    taken.append(_Change(stock_id, warehouse_id, line.variant_id, -take))
                    remaining -= take
            if remaining:
                available = sum(row[3] for row in by_variant[line.variant_id])
                short[line.variant_id] = (line.quantity, available)
            changes += taken
        if short:
            skus = _skus(short)
            # Raising inside the atomic block rolls back everything taken so far.
            raise OutOfStock(
                shortfalls={
                    skus.get(pk, str(pk)): {"requested": requested, "available": available}
                    for pk, (requested, available) in short.items()
                }
            )
        balances = _apply(changes)
        movements = _write(
            changes, balances, reason=StockReason.ORDER, reference=reference, note="", actor=actor
        )
    _log_allocation(reference, country, merged, changes)
    return movements


def _log_allocation(
    reference: str,
    country: str | None,
    merged: Sequence[StockLine],
    changes: Sequence[_Change] | Sequence[StockMovement],
) -> None:
    logger.info(
        "stock_allocated",
        reference=reference,
        country=country or "",
        lines={line.variant_id: line.quantity for line in merged},
        warehouses=sorted({change.warehouse_id for change in changes}),
    )


# Allocation as one statement: lock the serving rows of every line in id order (`locked`),
# split each line over them in warehouse priority order (`plan`: what the rows before
# this one cover is taken first), take it all, or nothing when any line is short
# (`taken`), and write a ledger row per stock row taken, in stock id order (`ledger`).
_TAKE_SQL = """
WITH wanted(variant_id, quantity) AS (VALUES {values}),
locked AS MATERIALIZED ({locked}),
plan AS MATERIALIZED (
    SELECT l.stock_id, l.warehouse_id, l.variant_id, l.quantity,
           LEAST(l.quantity, GREATEST(w.quantity - COALESCE(SUM(l.quantity) OVER (
               PARTITION BY l.variant_id ORDER BY l.priority, l.warehouse_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) AS take
    FROM locked AS l JOIN wanted AS w ON w.variant_id = l.variant_id
),
short AS (
    SELECT w.variant_id FROM wanted AS w LEFT JOIN plan AS p ON p.variant_id = w.variant_id
    GROUP BY w.variant_id, w.quantity HAVING COALESCE(SUM(p.quantity), 0) < w.quantity
),
taken AS (
    UPDATE {stock} AS s SET quantity = s.quantity - p.take, updated_at = %s
    FROM plan AS p, {variant} AS v
    WHERE s.id = p.stock_id AND p.take > 0 AND v.id = s.variant_id
      AND NOT EXISTS (SELECT 1 FROM short)
    RETURNING s.id AS stock_id, s.warehouse_id, s.variant_id, p.take, s.quantity, v.product_id
),
ledger AS (
    INSERT INTO {movement} (warehouse_id, variant_id, delta, balance, reason, reference, note,
                            actor_id, created_at)
    SELECT warehouse_id, variant_id, -take, quantity, %s, %s, '', %s, %s
    FROM taken ORDER BY stock_id
    RETURNING id, warehouse_id, variant_id
)
SELECT t.stock_id, t.warehouse_id, t.variant_id, t.take, t.quantity, t.product_id, l.id
FROM taken AS t JOIN ledger AS l USING (warehouse_id, variant_id)
ORDER BY t.stock_id
"""


def _serving_rows_locked(country: str | None, merged: Sequence[StockLine]) -> Any:
    """(stock id, warehouse, variant, quantity, warehouse priority) of the serving
    warehouses' rows for `merged`, locked in id order by the one statement that reads them
    (two orders never deadlock, whatever their lines and warehouses)."""
    return (
        Stock.objects.select_for_update(of=("self",))
        .filter(
            selectors.serving(country, warehouse="warehouse_id"),
            variant_id__in=[line.variant_id for line in merged],
        )
        .order_by("pk")
        .values_list("pk", "warehouse_id", "variant_id", "quantity", "warehouse__priority")
    )


@functools.lru_cache(maxsize=1024)
def _serving_rows_sql(country: str, lines: int) -> tuple[str, tuple[Any, ...]]:
    """`_serving_rows_locked` for `lines` variants, compiled by the ORM once per destination
    and line count (compiling it costs more CPU than running the allocation): its SQL, and
    its parameters before the variant ids, which come last. Caller holds a transaction."""
    ids = list(range(-lines, 0))  # stand-ins: only their places in the parameters matter
    sql, params = _serving_rows_locked(
        country, [StockLine(variant_id=pk, quantity=1) for pk in ids]
    ).query.sql_with_params()
    if list(params[-lines:]) != ids:
        raise AssertionError(f"the variant ids are not the last parameters of {sql}")
    return sql, tuple(params[:-lines])


def _take_in_one_statement(
    merged: Sequence[StockLine], *, country: str | None, reference: str, actor: Any
) -> list[StockMovement] | None:
    """Take every line's stock and write its ledger rows with one statement (PostgreSQL):
    the ledger rows, or None, with nothing changed, when a line is short.

    The same allocation as `allocate`'s: rows locked in id order in one statement (so two
    orders never deadlock), each line taken from the serving warehouses in priority order
    and split when one cannot cover it. The rows are read as locked (the newest version),
    and the CHECK (quantity >= 0) stays the last word. Caller holds a transaction.
    """
    locked_sql, served_params = _serving_rows_sql(country or "", len(merged))
    locked_params = [*served_params, *(line.variant_id for line in merged)]
    params: list[Any] = []
    for line in merged:
        params += [line.variant_id, line.quantity]
    sql = _TAKE_SQL.format(
        values=", ".join(["(%s::bigint, %s::integer)"] * len(merged)),
        # Column names of our own choosing: the ORM names them after the lookups.
        locked=f"SELECT * FROM ({locked_sql}) AS c(stock_id, warehouse_id, variant_id, "  # noqa: S608
        "quantity, priority)",
        stock=Stock._meta.db_table,
        variant=ProductVariant._meta.db_table,
        movement=StockMovement._meta.db_table,
    )
    now = timezone.now()
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    with connection.cursor() as cursor:
        tail = [now, StockReason.ORDER, reference, actor_id, now]
        prepared.execute(cursor, (sql, [*params, *locked_params, *tail]))
        rows = cursor.fetchall()
    if not rows:
        return None
    invalidate_products_on_commit({row[5] for row in rows})
    return [
        StockMovement(
            pk=movement_id,
            warehouse_id=warehouse_id,
            variant_id=variant_id,
            delta=-take,
            balance=balance,
            reason=StockReason.ORDER,
            reference=reference,
            note="",
            actor_id=actor_id,
            created_at=now,
        )
        for _stock, warehouse_id, variant_id, take, balance, _product, movement_id in rows
    ]


def release(
    *,
    reference: str,
    reason: StockReason,
    actor: Any = None,
    lines: Iterable[StockLine] | None = None,
) -> list[StockMovement]:
    """Return what `reference` still holds to the warehouses it came from, exactly once.

    What is held is read from the ledger under the row locks: the units taken by
    `reference` less those already given back. A second release (a retry, a race) finds
    nothing held and writes nothing. `lines` gives back only that many units per variant
    (what did not ship of a partly fulfilled order), never more than is held, from its
    warehouses in id order.
    """
    wanted = (
        None if lines is None else {line.variant_id: line.quantity for line in merge_lines(lines)}
    )
    if reason not in RELEASE_REASONS:
        raise InvalidInput(f"Stock is released for cancel or expiry, not {reason}.")
    with transaction.atomic():
        # Lock every stock row the reference ever moved, in id order, in one statement;
        # a concurrent release of the same reference waits here for the first to commit.
        ledger = StockMovement.objects.filter(
            reference=reference,
            warehouse_id=OuterRef("warehouse_id"),
            variant_id=OuterRef("variant_id"),
        )
        locked = _lock(Exists(ledger))
        if not locked:
            return []
        # Read under the locks, so it includes a release committed while this one waited.
        held = {
            (row["warehouse_id"], row["variant_id"]): -row["net"]
            for row in StockMovement.objects.filter(reference=reference)
            .values("warehouse_id", "variant_id")
            .annotate(net=Sum("delta"))
            if row["net"] < 0
        }
        if wanted is not None:
            for warehouse_id, variant_id in sorted(held):
                give = min(held[(warehouse_id, variant_id)], wanted.get(variant_id, 0))
                wanted[variant_id] = wanted.get(variant_id, 0) - give
                held[(warehouse_id, variant_id)] = give
            held = {place: units for place, units in held.items() if units > 0}
        changes = [
            _Change(stock_id, warehouse_id, variant_id, held[(warehouse_id, variant_id)])
            for stock_id, (warehouse_id, variant_id, _q) in locked.items()
            if (warehouse_id, variant_id) in held
        ]
        if not changes:
            return []
        balances = _apply(changes)
        movements = _write(
            changes, balances, reason=reason, reference=reference, note="", actor=actor
        )
    logger.info("stock_released", reference=reference, reason=str(reason))
    return movements


def _ensure_stock_row(*, variant_id: int, warehouse: Warehouse) -> None:
    """Create the (variant, warehouse) stock row, empty, unless it exists."""
    # Checked first: the foreign key is deferred, so a bad id would only fail at commit.
    if not ProductVariant.objects.filter(pk=variant_id).exists():
        raise InvalidInput(f"Variant {variant_id} does not exist.")
    Stock.objects.bulk_create(
        [Stock(variant_id=variant_id, warehouse=warehouse, quantity=0)], ignore_conflicts=True
    )


def _change_stock(
    *,
    variant_id: int,
    delta: int,
    warehouse: Warehouse | None,
    reason: StockReason,
    note: str,
    actor: Any,
    target: int | None = None,
    reference: str = "",
) -> StockMovement | None:
    warehouse = warehouse or selectors.default_warehouse()
    with transaction.atomic():
        _ensure_stock_row(variant_id=variant_id, warehouse=warehouse)
        ((stock_id, (_w, _v, quantity)),) = _lock(
            variant_id=variant_id, warehouse_id=warehouse.pk
        ).items()
        if target is not None:  # a stock count: relative to the stock under the lock
            delta = target - quantity
            if delta == 0:
                return None
        if quantity + delta < 0:
            sku = _skus([variant_id])[variant_id]
            raise OutOfStock(shortfalls={sku: {"requested": -delta, "available": quantity}})
        if quantity + delta > MAX_STOCK:
            sku = _skus([variant_id])[variant_id]
            raise InvalidInput(
                f"Stock of {sku} in {warehouse.slug} cannot exceed {MAX_STOCK} units: it holds "
                f"{quantity}, {delta} more would pass that."
            )
        change = _Change(stock_id, warehouse.pk, variant_id, delta)
        balances = _apply([change])
        (movement,) = _write(
            [change], balances, reason=reason, reference=reference, note=note, actor=actor
        )
        audit.record(
            action=f"stock.{reason}",
            model=Stock,
            object_id=stock_id,
            object_repr=lambda: f"{_skus([variant_id])[variant_id]} in {warehouse.slug}",
            changes={"quantity": (quantity, movement.balance), "note": ("", note)},
        )
    logger.info(
        "stock_changed",
        variant_id=variant_id,
        warehouse=warehouse.slug,
        delta=delta,
        reason=str(reason),
        stock=movement.balance,
    )
    return movement


def restock(
    *,
    variant_id: int,
    quantity: int,
    warehouse: Warehouse | None = None,
    note: str = "",
    actor: Any = None,
) -> StockMovement:
    """Receive `quantity` (> 0) units into `warehouse` (the default one when None)."""
    if quantity <= 0:
        raise InvalidInput("A restock adds a positive quantity.")
    movement = _change_stock(  # a non-zero delta always moves stock
        variant_id=variant_id,
        delta=quantity,
        warehouse=warehouse,
        reason=StockReason.RESTOCK,
        note=note,
        actor=actor,
    )
    return cast(StockMovement, movement)


def receive_returned(
    *,
    variant_id: int,
    quantity: int,
    warehouse: Warehouse,
    reference: str,
    note: str = "",
    actor: Any = None,
) -> StockMovement:
    """Put `quantity` (> 0) units a customer sent back into `warehouse`: a ledger row with
    reason `return` naming `reference` (the return, `return:<public id>`).

    May run inside the caller's transaction (the return's receipt commits with it).
    """
    if quantity <= 0:
        raise InvalidInput("A return puts back a positive quantity.")
    movement = _change_stock(  # a non-zero delta always moves stock
        variant_id=variant_id,
        delta=quantity,
        warehouse=warehouse,
        reason=StockReason.RETURN,
        note=note,
        actor=actor,
        reference=reference,
    )
    return cast(StockMovement, movement)


def adjust_stock(
    *,
    variant_id: int,
    delta: int,
    warehouse: Warehouse | None = None,
    note: str = "",
    actor: Any = None,
) -> StockMovement:
    """Correct stock by `delta` (shrinkage, a found box). Raises OutOfStock below zero."""
    if delta == 0:
        raise InvalidInput("An adjustment changes stock by a non-zero amount.")
    movement = _change_stock(  # a non-zero delta always moves stock
        variant_id=variant_id,
        delta=delta,
        warehouse=warehouse,
        reason=StockReason.ADJUSTMENT,
        note=note,
        actor=actor,
    )
    return cast(StockMovement, movement)


def set_stock_level(
    *,
    variant_id: int,
    target: int,
    warehouse: Warehouse | None = None,
    note: str = "",
    actor: Any = None,
) -> StockMovement | None:
    """Bring stock in `warehouse` to `target` (a stock count) with one adjustment; None if
    already there. The difference is computed under the row lock, so an order placed
    meanwhile is not overwritten."""
    if target < 0:
        raise InvalidInput("A stock level cannot be negative.")
    return _change_stock(
        variant_id=variant_id,
        delta=0,
        warehouse=warehouse,
        reason=StockReason.ADJUSTMENT,
        note=note,
        actor=actor,
        target=target,
    )
