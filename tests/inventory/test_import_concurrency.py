"""A 5,000-row `import_products` never makes a checkout of a SKU it touches wait for it.

Each row commits on its own (apps.inventory.imports), so the stock row a checkout locks is
held by the import for one row at most. The import runs in one thread, the order in
another, each on its own connection, with nothing paused: the order must finish while the
import is still running, in a small part of the import's time.
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

ROWS = 5000
SKUS = 50


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_a_checkout_of_a_sku_being_imported_completes_while_the_import_runs(tmp_path: Path):
    # given: 50 stocked SKUs; 5,000 rows set each one's stock 100 times, alternately 1000
    # and 1001, so every row writes (and locks) a stock row. The rows of a SKU are applied
    # together (one product group), so rows 501-600 applied are hot-5's.
    buyer = UserFactory(email="buyer@example.com")
    for n in range(SKUS):
        make_product(sku=f"hot-{n}", price="2.00", stock=20)
    rows = "".join(f"hot-{i % SKUS},{1000 + (i // SKUS) % 2}\n" for i in range(ROWS))
    path = tmp_path / "products.csv"
    path.write_text("sku,stock\n" + rows, encoding="utf-8")
    started = threading.Event()
    times: dict[str, float] = {}
    outcome: dict[str, Any] = {}

    applied = [0]

    def after_row(_line: int) -> None:
        applied[0] += 1
        if applied[0] == 520:  # hot-5's stock is being written row after row right now
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
            outcome["order"], _ = orders_services.place_order(
                user=buyer,
                lines=[
                    orders_services.OrderLine("hot-5", 3),
                    orders_services.OrderLine("hot-6", 1),
                ],
                payment_token="tok_success",
            )
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

    # then: the order finished first, in a sliver of the import's time
    assert "error" not in outcome, outcome.get("error")
    assert "order_error" not in outcome, outcome.get("order_error")
    order_latency = times["order_end"] - times["order_start"]
    import_duration = times["import_end"] - times["import_start"]
    assert import_running_when_order_done
    assert times["order_end"] < times["import_end"]
    assert order_latency < import_duration / 10, (order_latency, import_duration)
    print(f"order {order_latency:.3f}s while the import took {import_duration:.1f}s")
    report = outcome["report"]
    assert (report.updated, report.errors) == (ROWS, [])
    assert Order.objects.filter(pk=outcome["order"].pk).exists()
    # the last row of each SKU (row 4950 + n: 1001) came after the order and set the count
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
