"""The only code that writes the catalog: products, categories, and stock with its ledger.

Every stock change is one conditional UPDATE (`0 <= stock + delta <= MAX_STOCK`) that locks
the row,
plus its ledger row, in one transaction; rows are always touched in primary-key order, so
two multi-line reservations can never deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.catalog.cache import invalidate_products_on_commit
from apps.catalog.exceptions import InvalidCategory, OutOfStock, SkuTaken
from apps.catalog.models import Category, Product, StockMovement, StockReason
from ecommerce.errors import InvalidInput
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class StockLine:
    product_id: int
    quantity: int


def merge_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """Sum quantities per product and sort by product id (the lock order)."""
    totals: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.quantity <= 0:
            raise InvalidInput(f"Quantity must be positive, got {line.quantity}.")
        totals[line.product_id] += line.quantity
    return [StockLine(product_id=pk, quantity=qty) for pk, qty in sorted(totals.items())]


# The stock column is a 32-bit integer: past this the database would refuse the UPDATE.
MAX_STOCK = 2_147_483_647


def _apply_delta(product_id: int, delta: int) -> tuple[str, int] | None:
    """Add `delta` to a product's stock unless it would leave 0..MAX_STOCK; locks the row.

    Returns (sku, new stock), or None when the product is missing or the stock would leave
    its range (`_refusal` says which). The bound is checked in 64 bits, so it is the rule
    that refuses, never an integer overflow in the database.
    """
    table = Product._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET stock = stock + %s, updated_at = %s "  # noqa: S608
            "WHERE id = %s AND CAST(stock AS BIGINT) + %s BETWEEN 0 AND %s "
            "RETURNING sku, stock",
            [delta, timezone.now(), product_id, delta, MAX_STOCK],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _refusal(product_id: int, delta: int) -> Exception:
    """Why `_apply_delta` changed nothing: no such product, too little stock, or too much."""
    product = Product.objects.filter(pk=product_id).values_list("sku", "stock").first()
    if product is None:
        return InvalidInput(f"Product {product_id} does not exist.")
    sku, stock = product
    if delta > 0:
        return InvalidInput(
            f"Stock of {sku} cannot exceed {MAX_STOCK} units: it holds {stock}, "
            f"{delta} more would pass that."
        )
    return OutOfStock(shortfalls={sku: {"requested": -delta, "available": stock}})


def _write_movements(
    changes: Sequence[tuple[int, str, int, int]],
    *,
    reason: StockReason,
    reference: str,
    note: str,
    actor: Any,
) -> list[StockMovement]:
    movements = StockMovement.objects.bulk_create(
        StockMovement(
            product_id=product_id,
            delta=delta,
            balance=balance,
            reason=reason,
            reference=reference,
            note=note,
            actor=actor if actor is not None and actor.is_authenticated else None,
        )
        for product_id, _sku, delta, balance in changes
    )
    invalidate_products_on_commit((product_id, sku) for product_id, sku, _d, _b in changes)
    return movements


def reserve_stock(
    *,
    lines: Iterable[StockLine],
    reference: str,
    actor: Any = None,
    savepoint: bool = True,
) -> list[StockMovement]:
    """Take stock for every line, or for none.

    Raises OutOfStock naming each short SKU with what is available; nothing changes then.
    Caller may hold an outer transaction: the stock row locks last until it commits, so
    call this as late in that transaction as possible. A caller that abandons its whole
    transaction on OutOfStock passes `savepoint=False` and saves two round trips.
    """
    merged = merge_lines(lines)
    with transaction.atomic(savepoint=savepoint):
        changes: list[tuple[int, str, int, int]] = []
        short: dict[int, int] = {}
        for line in merged:
            applied = _apply_delta(line.product_id, -line.quantity)
            if applied is None:
                short[line.product_id] = line.quantity
            else:
                changes.append((line.product_id, applied[0], -line.quantity, applied[1]))
        if short:
            available = {
                pk: (sku, stock)
                for pk, sku, stock in Product.objects.filter(pk__in=short).values_list(
                    "pk", "sku", "stock"
                )
            }
            # Raising inside the atomic block rolls back the lines already taken.
            raise OutOfStock(
                shortfalls={
                    available.get(pk, (str(pk), 0))[0]: {
                        "requested": qty,
                        "available": available.get(pk, (str(pk), 0))[1],
                    }
                    for pk, qty in short.items()
                }
            )
        movements = _write_movements(
            changes, reason=StockReason.ORDER, reference=reference, note="", actor=actor
        )
    logger.info(
        "stock_reserved",
        reference=reference,
        lines={line.product_id: line.quantity for line in merged},
    )
    return movements


def release_stock(
    *,
    lines: Iterable[StockLine],
    reason: StockReason,
    reference: str,
    actor: Any = None,
) -> list[StockMovement]:
    """Put reserved units back (cancel, expiry, failed payment).

    Releasing once per reservation is the caller's rule (it holds its own row lock).
    """
    if reason not in (StockReason.CANCEL, StockReason.EXPIRY):
        raise InvalidInput(f"Stock is released for cancel or expiry, not {reason}.")
    merged = merge_lines(lines)
    with transaction.atomic():
        changes = []
        for line in merged:
            applied = _apply_delta(line.product_id, line.quantity)
            if applied is None:
                raise _refusal(line.product_id, line.quantity)
            changes.append((line.product_id, applied[0], line.quantity, applied[1]))
        movements = _write_movements(
            changes, reason=reason, reference=reference, note="", actor=actor
        )
    logger.info("stock_released", reference=reference, reason=str(reason))
    return movements


def _change_stock(
    *, product_id: int, delta: int, reason: StockReason, note: str, actor: Any
) -> StockMovement:
    with transaction.atomic():
        applied = _apply_delta(product_id, delta)
        if applied is None:
            raise _refusal(product_id, delta)
        (movement,) = _write_movements(
            [(product_id, applied[0], delta, applied[1])],
            reason=reason,
            reference="",
            note=note,
            actor=actor,
        )
    logger.info(
        "stock_changed", product_id=product_id, delta=delta, reason=str(reason), stock=applied[1]
    )
    return movement


def restock(*, product_id: int, quantity: int, note: str = "", actor: Any = None) -> StockMovement:
    """Receive `quantity` (> 0) units."""
    if quantity <= 0:
        raise InvalidInput("A restock adds a positive quantity.")
    return _change_stock(
        product_id=product_id, delta=quantity, reason=StockReason.RESTOCK, note=note, actor=actor
    )


def adjust_stock(
    *, product_id: int, delta: int, note: str = "", actor: Any = None
) -> StockMovement:
    """Correct stock by `delta` (stock count, shrinkage). Raises OutOfStock below zero."""
    if delta == 0:
        raise InvalidInput("An adjustment changes stock by a non-zero amount.")
    return _change_stock(
        product_id=product_id, delta=delta, reason=StockReason.ADJUSTMENT, note=note, actor=actor
    )


def set_stock_level(
    *, product_id: int, target: int, note: str = "", actor: Any = None
) -> StockMovement | None:
    """Bring stock to `target` (a stock count) with one adjustment; None if already there.

    The difference is computed under the row lock, so an order placed meanwhile is not
    overwritten: the adjustment is relative to the stock at that moment.
    """
    if target < 0:
        raise InvalidInput("A stock level cannot be negative.")
    with transaction.atomic():
        current = (
            Product.objects.select_for_update()
            .filter(pk=product_id)
            .values_list("stock", flat=True)
        ).first()
        if current is None:
            raise InvalidInput(f"Product {product_id} does not exist.")
        if current == target:
            return None
        return adjust_stock(product_id=product_id, delta=target - current, note=note, actor=actor)


def check_category_parent(category: Category | None, parent: Category | None) -> None:
    """Refuse a parent that is the category itself or one of its descendants."""
    node = parent
    while node is not None and category is not None and category.pk is not None:
        if node.pk == category.pk:
            raise InvalidCategory("A category cannot be its own ancestor.")
        node = node.parent


def create_category(
    *, name: str, slug: str, parent: Category | None = None, is_active: bool = True
) -> Category:
    try:
        with transaction.atomic():
            category = Category.objects.create(
                name=name, slug=slug, parent=parent, is_active=is_active
            )
    except IntegrityError:
        raise InvalidCategory(f"A category with slug {slug} already exists.") from None
    invalidate_products_on_commit(())
    return category


def update_category(*, category: Category, **fields: Any) -> Category:
    if "parent" in fields:
        check_category_parent(category, fields["parent"])
    for name, value in fields.items():
        setattr(category, name, value)
    try:
        with transaction.atomic():
            category.save(update_fields=[*fields, "updated_at"])
    except IntegrityError:
        raise InvalidCategory("A category with that slug already exists.") from None
    invalidate_products_on_commit(
        Product.objects.filter(category=category).values_list("pk", "sku")
    )
    return category


def create_product(
    *,
    sku: str,
    name: str,
    price: Decimal,
    description: str = "",
    category: Category | None = None,
    is_active: bool = True,
    initial_stock: int = 0,
    actor: Any = None,
) -> Product:
    """Create a product; initial stock goes through the ledger as a restock.

    Raises SkuTaken when the SKU exists in any letter case.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                product = Product.objects.create(
                    sku=sku,
                    name=name,
                    price=price,
                    description=description,
                    category=category,
                    is_active=is_active,
                )
        except IntegrityError:
            if Product.objects.filter(sku__iexact=sku).exists():
                raise SkuTaken(sku=sku) from None
            raise
        invalidate_products_on_commit([(product.pk, product.sku)])
        if initial_stock:
            restock(
                product_id=product.pk, quantity=initial_stock, note="initial stock", actor=actor
            )
            product.refresh_from_db(fields=["stock", "updated_at"])
    logger.info("product_created", product_id=product.pk, sku=product.sku)
    return product


UPDATABLE_PRODUCT_FIELDS = frozenset({"name", "description", "price", "category", "is_active"})


def update_product(*, product: Product, **fields: Any) -> Product:
    """Change a product's descriptive fields (SKU and stock are not among them)."""
    unknown = set(fields) - UPDATABLE_PRODUCT_FIELDS
    if unknown:
        raise InvalidInput(f"Fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if not fields:
        return product
    with transaction.atomic():
        for name, value in fields.items():
            setattr(product, name, value)
        product.save(update_fields=[*fields, "updated_at"])
        invalidate_products_on_commit([(product.pk, product.sku)])
    logger.info("product_updated", product_id=product.pk, fields=sorted(fields))
    return product


def deactivate_product(*, product: Product) -> Product:
    """Take a product off sale. Products are never hard-deleted: orders and the ledger
    keep referring to them."""
    return update_product(product=product, is_active=False)
