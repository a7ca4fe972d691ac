"""A big `import_products` never makes a checkout of a SKU it touches wait for it.

Each row commits on its own (apps.inventory.imports), so the stock row a checkout locks is
held by the import for one row at most. The import runs in one thread, the order in
another, each on its own connection, with nothing paused: the order must finish while the
import is still writing the SKU it orders, having waited for a few rows at most, never
for the SKU's group of rows (let alone the file).

The wait is counted in rows the import committed while the order ran, not in seconds: a
row and an order slow down alike on a busy machine, so the count stays put where a time
would not, and it needs no more rows in the file than a few groups.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from apps.catalog.models import ProductVariant
from apps.inventory.imports import import_products
from apps.inventory.models import StockMovement
from apps.orders import services as orders_services
from apps.orders.models import Order
from ecommerce.commands import Progress
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

SKUS = 10
ROWS_PER_SKU = 100
ROWS = SKUS * ROWS_PER_SKU
# The order starts once this many rows are applied: 10 rows into hot-5's group (rows
# 501-600), so an import holding a SKU's stock row for its whole group would make the
# order wait for 90 rows.
ORDER_AT_ROW = 510
# Rows the import may commit while the order runs: an order costs a handful of rows'
# work (about 10 on a loaded 2-core machine), far below the 90 of a group-long hold.
MAX_ROWS_DURING_ORDER = 45


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_a_checkout_of_a_sku_being_imported_completes_while_the_import_runs(tmp_path: Path):
    # given: 10 stocked SKUs; 1,000 rows set each one's stock 100 times, alternately 1000
    # and 1001, so every row writes (and locks) a stock row. The rows of a SKU are applied
    # together (one product group), so rows 501-600 applied are hot-5's, 601-700 hot-6's.
    buyer = UserFactory(email="buyer@example.com")
    for n in range(SKUS):
        make_product(sku=f"hot-{n}", price="2.00", stock=20)
    rows = "".join(f"hot-{i % SKUS},{1000 + (i // SKUS) % 2}\n" for i in range(ROWS))
    path = tmp_path / "products.csv"
    path.write_text("sku,stock\n" + rows, encoding="utf-8")
    started = threading.Event()
    times: dict[str, float] = {}
    applied_at: dict[str, int] = {}
    outcome: dict[str, Any] = {}

    applied = [0]

    def after_row(_line: int) -> None:
        applied[0] += 1
        if applied[0] == ORDER_AT_ROW:  # hot-5's stock is being written row after row now
            started.set()

    def run_import() -> None:
        times["import_start"] = time.monotonic()
        try:
            with path.open(encoding="utf-8") as handle:
                outcome["report"] = import_products(
                    lines=handle, after_row=after_row, progress=Progress("import_products")
                )
        except Exception as exc:  # surfaced by the assertions below
            outcome["error"] = exc
        finally:
            times["import_end"] = time.monotonic()
            started.set()
            connection.close()

    def place() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '10s'")  # fail, never hang, on a bug
            times["order_start"] = time.monotonic()
            applied_at["order_start"] = applied[0]
            outcome["order"], _ = orders_services.place_order(
                user=buyer,
                lines=[
                    orders_services.OrderLine("hot-5", 3),
                    orders_services.OrderLine("hot-6", 1),
                ],
                payment_token="tok_success",
            )
            applied_at["order_end"] = applied[0]
            times["order_end"] = time.monotonic()
        except Exception as exc:
            outcome["order_error"] = exc
        finally:
            connection.close()

    importer = threading.Thread(target=run_import)
    importer.start()
    try:
        assert started.wait(300), outcome.get("error")
        # when: a checkout of SKUs the import keeps writing, from another thread
        buyer_thread = threading.Thread(target=place)
        buyer_thread.start()
        buyer_thread.join(60)
        import_running_when_order_done = importer.is_alive()
    finally:
        importer.join(600)

    # then: the order finished first, while the import committed a few rows of hot-5's
    assert "error" not in outcome, outcome.get("error")
    assert "order_error" not in outcome, outcome.get("order_error")
    order_latency = times["order_end"] - times["order_start"]
    import_duration = times["import_end"] - times["import_start"]
    rows_during_order = applied_at["order_end"] - applied_at["order_start"]
    assert import_running_when_order_done
    assert times["order_end"] < times["import_end"]
    assert applied_at["order_start"] >= ORDER_AT_ROW
    assert rows_during_order < MAX_ROWS_DURING_ORDER, (rows_during_order, order_latency)
    print(
        f"order {order_latency:.3f}s ({rows_during_order} rows committed meanwhile) while "
        f"the import took {import_duration:.1f}s ({import_duration / ROWS * 1000:.1f} ms a row)"
    )
    report = outcome["report"]
    assert (report.updated, report.errors) == (ROWS, [])
    assert Order.objects.filter(pk=outcome["order"].pk).exists()
    # the last row of each SKU (row 990 + n: 1001) came after the order and set the count
    for sku in ("hot-5", "hot-6"):
        assert stock_of(ProductVariant.objects.get(sku=sku).pk) == 1001
    ledger = StockMovement.objects.filter(variant__sku="hot-5", reason="order")
    assert list(ledger.values_list("delta", flat=True)) == [-3]
    assert_ledger_matches()


@pytest.mark.django_db(transaction=True)
def test_re_running_the_same_file_changes_nothing(tmp_path: Path):
    # given: a file already imported once
    for n in range(3):
        make_product(sku=f"same-{n}", price="2.00", stock=1)
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,price,stock\n"
        + "".join(f"same-{n},Same {n},3.00,{n + 5}\n" for n in range(3))
        + "new-1,New,4.00,2\n",
        encoding="utf-8",
    )
    with path.open(encoding="utf-8") as handle:
        first = import_products(lines=handle)
    ledger = list(ProductVariant.objects.order_by("pk").values_list("sku", "price"))

    # when
    with path.open(encoding="utf-8") as handle:
        second = import_products(lines=handle)

    # then
    assert (first.created, first.updated, first.errors) == (1, 3, [])
    assert (second.created, second.updated, second.unchanged, second.errors) == (0, 0, 4, [])
    assert list(ProductVariant.objects.order_by("pk").values_list("sku", "price")) == ledger
