"""Issue 12's migrations run forward on a database holding the schema before them.

The test database is taken back to the state before variants (catalog 0005, orders 0005,
no inventory, no shipping), filled with rows as the shop writes them today (products with
SKUs in mixed case and several currencies, the stock ledger, orders in every status with
their ledger rows, a pending order's payment), and migrated forward to the latest state.
Then every product is a one-variant product with the same id, every ledger row sits in the
main warehouse unchanged, order lines name their variant, the invariants hold, and the shop
works: new ids follow the copied ones, the ledger stays append-only, and an order placed
before the migration, like one placed after it, gives its stock back to the main warehouse.

Whatever happens, the database is migrated forward again at the end, so the tests after
these find the schema they expect (and a run killed midway is repaired by the next
session's `migrate`, which pytest-django runs even with --reuse-db).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.catalog import services as catalog_services
from apps.catalog.models import Product, ProductVariant
from apps.inventory import services as inventory_services
from apps.inventory.models import Stock, StockMovement, StockReason, Warehouse
from apps.orders import services as order_services
from apps.orders.models import Order, OrderItem, OrderStatus
from ecommerce.invariants import CheckContext, run_checks
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# The schema the shop runs on before issue 12.
BEFORE: list[tuple[str, str | None]] = [
    ("catalog", "0005_product_search_index"),
    ("orders", "0005_order_event_created_index"),
    ("inventory", None),
    ("shipping", None),
]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def migrate(targets: list[tuple[str, str | None]]) -> None:
    """Migrate the test database to `targets` with a fresh executor (it reads what is
    applied when it is made)."""
    MigrationExecutor(connection).migrate(targets)
    ContentType.objects.clear_cache()


def latest() -> list[tuple[str, str | None]]:
    """Every app's last migration, whatever migrations land after these."""
    return list(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def before_variants() -> Iterator[None]:
    try:
        migrate(BEFORE)
        yield
    finally:
        migrate(latest())


def insert(table: str, **columns: Any) -> int:
    """One row by raw SQL, as the old schema stores it; its id."""
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) VALUES ({marks}) RETURNING id",  # noqa: S608
            list(columns.values()),
        )
        return int(cursor.fetchone()[0])


def columns_of(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {
            column.name for column in connection.introspection.get_table_description(cursor, table)
        }


def triggers_on(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True)
class OldProduct:
    id: int
    sku: str
    name: str
    price: Decimal
    currency: str
    is_active: bool = True


@dataclass(frozen=True)
class OldMovement:
    id: int
    product_id: int
    delta: int
    balance: int
    reason: str
    reference: str
    note: str
    actor_id: int | None
    created_at: datetime


# Ids with gaps (deleted rows are never reused), above anything a sequence has handed out.
PRODUCTS = [
    OldProduct(101, "Tee-BLK-m", "Organic tee", Decimal("19.90"), "EUR"),
    OldProduct(102, "mug.white", "Mug", Decimal("8.50"), "EUR"),
    OldProduct(105, "POSTER_A2", "Poster A2", Decimal("12.00"), "USD"),
    OldProduct(107, "sock-3PACK", "Socks, three pairs", Decimal("9.99"), "GBP"),
    OldProduct(110, "Gift-Card-50", "Gift card", Decimal("50.00"), "EUR", is_active=False),
]
BY_ID = {product.id: product for product in PRODUCTS}


@dataclass
class Shop:
    """What was written before the migration, to compare with what is there after it."""

    buyer: Any
    other_buyer: Any
    staff: Any
    movements: list[OldMovement]
    stock: dict[int, int]
    orders: dict[str, tuple[int, uuid.UUID]]  # name -> (id, public id)
    items: dict[int, int]  # order item id -> product id


def seed_shop() -> Shop:
    """Products, their ledger and orders in every status, written as today's code does:
    an order takes stock with `order` rows referencing `order:<public id>`; a cancelled,
    failed or refunded one gives it back with `cancel` rows, an expired one with `expiry`."""
    buyer, other_buyer = UserFactory(), UserFactory()
    staff = UserFactory(is_staff=True)
    for product in PRODUCTS:
        created = T0 - timedelta(days=30, minutes=product.id)
        insert(
            "catalog_product",
            id=product.id,
            created_at=created,
            updated_at=created + timedelta(days=1),
            sku=product.sku,
            name=product.name,
            description=f"About the {product.name.lower()}.",
            price=product.price,
            currency=product.currency,
            is_active=product.is_active,
            stock=0,
            category_id=None,
        )
    orders: dict[str, tuple[int, uuid.UUID]] = {}
    items: dict[int, int] = {}
    movements: list[OldMovement] = []
    balances: dict[int, int] = defaultdict(int)
    clock = iter(T0 + timedelta(hours=hours) for hours in range(1000))

    def move(product_id: int, delta: int, reason: str, *, reference: str = "", note: str = "",
             actor: Any = None, at: datetime | None = None) -> None:  # fmt: skip
        balances[product_id] += delta
        movement = OldMovement(
            id=9001 + 7 * len(movements),
            product_id=product_id,
            delta=delta,
            balance=balances[product_id],
            reason=reason,
            reference=reference,
            note=note,
            actor_id=actor.pk if actor is not None else None,
            created_at=at or next(clock),
        )
        movements.append(movement)
        insert(
            "catalog_stockmovement",
            id=movement.id,
            product_id=movement.product_id,
            delta=movement.delta,
            balance=movement.balance,
            reason=movement.reason,
            reference=movement.reference,
            note=movement.note,
            actor_id=movement.actor_id,
            created_at=movement.created_at,
        )

    def order(name: str, status: str, user: Any, lines: dict[int, int], *,
              released: str | None = None, at: datetime | None = None) -> None:  # fmt: skip
        placed = at or next(clock)
        public_id = uuid.uuid4()
        currency = BY_ID[next(iter(lines))].currency
        total = sum((BY_ID[pk].price * qty for pk, qty in lines.items()), Decimal("0.00"))
        order_id = insert(
            "orders_order",
            created_at=placed,
            updated_at=placed + timedelta(minutes=3),
            public_id=public_id,
            status=status,
            currency=currency,
            subtotal=total,
            total=total,
            idempotency_key=f"key-{name}",
            fingerprint="f" * 64,
            creation_response=None,
            placed_by_id=None,
            user_id=user.pk,
        )
        orders[name] = (order_id, public_id)
        reference = f"order:{public_id}"
        for product_id, quantity in sorted(lines.items()):
            item_id = insert(
                "orders_orderitem",
                order_id=order_id,
                product_id=product_id,
                sku=BY_ID[product_id].sku,
                name=BY_ID[product_id].name,
                unit_price=BY_ID[product_id].price,
                quantity=quantity,
                line_total=BY_ID[product_id].price * quantity,
            )
            items[item_id] = product_id
            move(product_id, -quantity, "order", reference=reference, actor=user, at=placed)
        if released:
            for product_id, quantity in sorted(lines.items()):
                move(product_id, quantity, released, reference=reference, actor=None)

    move(101, 50, "restock", note="opening stock", actor=staff)
    move(102, 30, "restock", note="opening stock", actor=staff)
    move(105, 10, "restock", actor=staff)
    move(107, 20, "restock", note="supplier delivery 4711", actor=staff)
    order("paid", OrderStatus.PAID, other_buyer, {101: 1})
    order("cancelled", OrderStatus.CANCELLED, buyer, {105: 4}, released="cancel")
    order("expired", OrderStatus.EXPIRED, other_buyer, {102: 1}, released="expiry")
    order("fulfilled", OrderStatus.FULFILLED, buyer, {107: 3, 102: 2})
    order("refunded", OrderStatus.REFUNDED, other_buyer, {101: 1}, released="cancel")
    order("failed", OrderStatus.PAYMENT_FAILED, buyer, {105: 1}, released="cancel")
    move(102, -2, "adjustment", note="broken in the warehouse", actor=staff)
    move(107, 5, "restock", actor=None)
    # Placed a minute ago and still waiting for its payment: cancelled after the migration.
    order("pending", OrderStatus.PENDING_PAYMENT, buyer, {101: 2, 102: 1},
          at=timezone.now() - timedelta(minutes=1))  # fmt: skip
    pending_id, pending_public_id = orders["pending"]
    insert(
        "payments_payment",
        created_at=timezone.now(),
        updated_at=timezone.now(),
        amount=Decimal("48.30"),
        currency="EUR",
        status="pending",
        token="tok_success",
        idempotency_key=f"order-{pending_public_id}",
        provider_charge_id="",
        provider_refund_id="",
        decline_code="",
        attempts=0,
        last_error="",
        last_attempt_at=None,
        order_id=pending_id,
    )
    with connection.cursor() as cursor:
        for product_id, stock in balances.items():
            cursor.execute(
                "UPDATE catalog_product SET stock = %s WHERE id = %s", [stock, product_id]
            )
    return Shop(
        buyer=buyer,
        other_buyer=other_buyer,
        staff=staff,
        movements=movements,
        stock={product.id: balances.get(product.id, 0) for product in PRODUCTS},
        orders=orders,
        items=items,
    )


def assert_the_schema_before_variants() -> None:
    """The forward runs start from the schema of that day, not from an approximation."""
    tables = set(connection.introspection.table_names())
    assert {"catalog_stockmovement", "catalog_product", "orders_orderitem"} <= tables
    assert not {t for t in tables if t.startswith(("inventory_", "shipping_"))}
    assert "catalog_productvariant" not in tables
    assert {"sku", "stock", "price", "currency", "search_document"} <= columns_of("catalog_product")
    assert "product_id" in columns_of("orders_orderitem")
    assert "variant_id" not in columns_of("orders_orderitem")
    assert triggers_on("catalog_stockmovement") == {"catalog_stockmovement_append_only"}


def test_a_shop_moves_to_variants_and_the_main_warehouse_and_keeps_working(
    before_variants: None,
) -> None:
    """One backward and forward run (a minute on a busy machine) for both halves: the rows
    arrive as they should, then the migrated shop takes new ones."""
    assert_the_schema_before_variants()
    shop = seed_shop()
    assert shop.stock == {101: 47, 102: 25, 105: 10, 107: 22, 110: 0}

    migrate(latest())

    assert_products_stock_ledger_and_orders_moved(shop)
    assert_the_migrated_shop_takes_new_rows(shop)


def assert_products_stock_ledger_and_orders_moved(shop: Shop) -> None:
    # One variant per product, with the product's id, SKU (letter case kept), price, currency.
    variants = {v.pk: v for v in ProductVariant.objects.all()}
    assert sorted(variants) == sorted(BY_ID)
    for old in PRODUCTS:
        variant = variants[old.id]
        assert (variant.product_id, variant.sku, variant.price, variant.currency) == (
            old.id,
            old.sku,
            old.price,
            old.currency,
        )
        assert (variant.name, variant.is_active) == ("", True)
        product = Product.objects.get(pk=old.id)
        assert (product.name, product.price, product.currency, product.is_active) == (
            old.name,
            old.price,
            old.currency,
            old.is_active,
        )
        assert variant.created_at == product.created_at == T0 - timedelta(days=30, minutes=old.id)

    # Stock: one row per variant in the main warehouse, as the products held.
    main = Warehouse.objects.get()
    assert (main.slug, main.name, main.is_active) == ("main", "Main warehouse", True)
    assert {s.variant_id: s.quantity for s in Stock.objects.filter(warehouse=main)} == shop.stock
    assert Stock.objects.count() == len(PRODUCTS)

    # The ledger: every row, same id and content, now naming the main warehouse.
    moved = {m.pk: m for m in StockMovement.objects.all()}
    assert sorted(moved) == [old.id for old in shop.movements]
    for old in shop.movements:
        row = moved[old.id]
        assert (
            row.warehouse_id,
            row.variant_id,
            row.delta,
            row.balance,
            row.reason,
            row.reference,
            row.note,
            row.actor_id,
            row.created_at,
        ) == (
            main.pk,
            old.product_id,
            old.delta,
            old.balance,
            old.reason,
            old.reference,
            old.note,
            old.actor_id,
            old.created_at,
        )

    # Order lines name the variant with their product's id and keep what they copied.
    lines = {item.pk: item for item in OrderItem.objects.all()}
    assert sorted(lines) == sorted(shop.items)
    for item_id, product_id in shop.items.items():
        line = lines[item_id]
        assert (line.variant_id, line.sku, line.name, line.variant_name) == (
            product_id,
            BY_ID[product_id].sku,
            BY_ID[product_id].name,
            "",
        )
    assert Order.objects.get(pk=shop.orders["paid"][0]).shipping_country == ""

    # What the shop promises about the data these migrations move holds on the migrated
    # data. (The payment checks ask the provider about each order's charge: the migration
    # moves no payment, and this shop's history has no provider behind it.)
    results = run_checks(
        CheckContext(now=timezone.now(), since=None, grace=timedelta(0)),
        only=["inventory.stock_matches_ledger", "orders.stock_held"],
    )
    assert {r.name: (r.status, r.examples) for r in results if not r.ok} == {}
    checked = {r.name: r.checked for r in results}
    assert checked["inventory.stock_matches_ledger"] == len(PRODUCTS)
    assert checked["orders.stock_held"] == len(shop.orders)


def assert_the_migrated_shop_takes_new_rows(shop: Shop) -> None:
    """New rows follow the copied ones, and stock goes back to the main warehouse."""
    main = Warehouse.objects.get(slug="main")
    last_movement = max(m.id for m in shop.movements)

    # Each call commits (the test is transactional): the charge and notifications that
    # placing and cancelling queue after commit are not part of this test, so everything
    # below runs in one transaction that is rolled back at the end.
    with transaction.atomic():
        # New ids follow the copied ones: the sequences were moved past them.
        tee = Product.objects.get(pk=101)
        large = catalog_services.add_variant(
            product=tee,
            spec=catalog_services.VariantSpec(
                sku="Tee-BLK-L", price=Decimal("21.90"), name="L / Black", initial_stock=4
            ),
            actor=shop.staff,
        )
        assert large.pk > max(BY_ID)
        opening = StockMovement.objects.get(variant=large)
        assert opening.pk > last_movement
        assert (opening.warehouse_id, opening.delta, opening.balance) == (main.pk, 4, 4)
        tee.refresh_from_db()
        assert (tee.price, tee.currency) == (Decimal("19.90"), "EUR")
        restock = inventory_services.restock(variant_id=105, quantity=3, actor=shop.staff)
        assert restock.pk > opening.pk
        assert (restock.balance, restock.warehouse_id) == (13, main.pk)

        # The ledger stays append-only.
        for statement in (
            "UPDATE inventory_stockmovement SET delta = 99 WHERE id = %s",
            "UPDATE inventory_stockmovement SET note = 'edited' WHERE id = %s",
            "DELETE FROM inventory_stockmovement WHERE id = %s",
        ):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement, [shop.movements[0].id])
        assert StockMovement.objects.get(pk=shop.movements[0].id).delta == 50

        # The order placed before the migration is cancelled after it: its units go back to
        # the main warehouse, read from the copied ledger rows.
        pending_id, pending_public_id = shop.orders["pending"]
        order_services.cancel_order(order_id=pending_id, by=shop.buyer)
        assert Order.objects.get(pk=pending_id).status == OrderStatus.CANCELLED
        released = StockMovement.objects.filter(
            reference=f"order:{pending_public_id}", reason=StockReason.CANCEL
        )
        assert sorted(released.values_list("variant_id", "warehouse_id", "delta")) == [
            (101, main.pk, 2),
            (102, main.pk, 1),
        ]
        assert stock(101, main) == 49
        assert stock(102, main) == 26

        # An order placed now, by a migrated SKU in another letter case, by a migrated
        # product's id and by the new variant's SKU, takes from and returns to main.
        order, created = order_services.place_order(
            user=shop.other_buyer,
            lines=[
                order_services.OrderLine(product="TEE-blk-M", quantity=3),
                order_services.OrderLine(product="102", quantity=1),
                order_services.OrderLine(product="tee-blk-l", quantity=1),
            ],
            payment_token="tok_success",
        )
        assert created
        assert sorted(
            order.items.values_list("variant_id", "sku", "name", "variant_name", "quantity")
        ) == [
            (101, "Tee-BLK-m", "Organic tee", "", 3),
            (102, "mug.white", "Mug", "", 1),
            (large.pk, "Tee-BLK-L", "Organic tee", "L / Black", 1),
        ]
        assert (stock(101, main), stock(102, main), stock(large.pk, main)) == (46, 25, 3)
        order_services.cancel_order(order_id=order.pk, by=shop.other_buyer)
        assert (stock(101, main), stock(102, main), stock(large.pk, main)) == (49, 26, 4)

        results = run_checks(
            CheckContext(now=timezone.now(), since=None, grace=timedelta(0)),
            only=["inventory.stock_matches_ledger", "orders.stock_held"],
        )
        assert {r.name: (r.status, r.examples) for r in results if not r.ok} == {}
        transaction.set_rollback(True)


def stock(variant_id: int, warehouse: Warehouse) -> int:
    return Stock.objects.get(variant_id=variant_id, warehouse=warehouse).quantity


def test_an_empty_database_gets_the_main_warehouse_and_nothing_else(
    before_variants: None,
) -> None:
    assert_the_schema_before_variants()

    migrate(latest())

    main = Warehouse.objects.get()
    assert (main.slug, main.name, main.priority, main.is_active) == (
        "main",
        "Main warehouse",
        100,
        True,
    )
    assert not ProductVariant.objects.exists()
    assert not Stock.objects.exists()
    assert not StockMovement.objects.exists()
    assert triggers_on("inventory_stockmovement") == {"inventory_stockmovement_append_only"}
    with transaction.atomic():
        product = catalog_services.create_product(
            name="Organic tee",
            variants=[
                catalog_services.VariantSpec(
                    sku="TEE-M", price=Decimal("19.90"), name="M", initial_stock=5
                )
            ],
        )
        variant = product.variants.get()
        assert stock(variant.pk, main) == 5
        transaction.set_rollback(True)
