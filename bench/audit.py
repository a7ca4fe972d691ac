"""The bench database after a run: stock against its ledger, the sell-out, queries per request.

    BENCH_TOKEN=<access token> BENCH_CHECKOUT="<cart token> <its buyer's access token>"
    DATABASE_URL=... .venv/bin/python bench/audit.py    # (one command line)

Run by bench/run.py once the load is over. Prints one JSON object: the stock rows whose
quantity differs from the sum of their ledger (every SKU but the bare ceiling's, whose writes
skip the ledger on purpose), the units and orders of the sell-out SKU, and the database
queries of one request to each benchmarked endpoint, counted by Django itself
(CaptureQueriesContext): a product detail cold then warm, a listing page, an order, a
checkout (BENCH_CHECKOUT: a prepared cart and its buyer's access token). Then the
cache stampede target: 50 concurrent first reads of one product with every cache key gone
(the cache is cleared: the run is over), and how many of them read it from the database.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")
django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from apps.inventory.models import Stock, StockMovement  # noqa: E402
from apps.orders.models import OrderItem  # noqa: E402


def count(client: Client, method: str, path: str, expected: int, **extra: object) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, **extra)
    if response.status_code != expected:
        sys.exit(f"queries: {method.upper()} {path} answered {response.status_code}")
    return len(captured.captured_queries)


def stock_and_ledger() -> dict[str, object]:
    ledger = {
        (w, v): total
        for w, v, total in StockMovement.objects.exclude(variant__sku__startswith="bare")
        .values("warehouse_id", "variant_id")
        .annotate(total=Sum("delta"))
        .values_list("warehouse_id", "variant_id", "total")
    }
    rows = list(
        Stock.objects.exclude(variant__sku__startswith="bare").values_list(
            "warehouse__slug", "warehouse_id", "variant__sku", "variant_id", "quantity"
        )
    )
    bad = [
        f"{sku}@{slug}: stock {quantity}, ledger {ledger.get((w, v), 0)}"
        for slug, w, sku, v, quantity in rows
        if quantity < 0 or ledger.pop((w, v), 0) != quantity
    ]
    bad += [
        f"variant {v}@warehouse {w}: ledger {t}, no stock row" for (w, v), t in ledger.items() if t
    ]
    items = OrderItem.objects.filter(sku__iexact="sellout1")
    return {
        "stock_rows": len(rows),
        "ledger_mismatches": bad[:5],
        "ledger_mismatch_count": len(bad),
        "sellout_units_sold": items.aggregate(units=Sum("quantity"))["units"] or 0,
        "sellout_orders": items.values("order_id").distinct().count(),
        "sellout_stock": sum(q for _, _, sku, _, q in rows if sku == "sellout1"),
    }


def cold_key_reads(lookup: str, concurrency: int = 50) -> int:
    """How many of `concurrency` simultaneous first reads of one product (its cache key
    absent) read the product from the database: each request in its own thread, with its
    own database connection, released together by a barrier."""
    barrier = threading.Barrier(concurrency)
    readers: list[bool] = []
    errors: list[str] = []

    def read() -> None:
        client = Client(HTTP_HOST="127.0.0.1")
        try:
            barrier.wait()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(f"/api/products/{lookup}")
            if response.status_code != 200:
                errors.append(str(response.status_code))
            readers.append(any('"catalog_product"' in q["sql"] for q in captured))
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"audit: cold reads of {lookup} answered {sorted(set(errors))}")
    return sum(readers)


def main() -> None:
    # Before the order below, which takes from bench3's stock through the ledger too.
    check = stock_and_ledger()
    # Every key cold: the run is over (Celery too), nothing else uses this Redis database.
    cache.clear()
    cold_readers = cold_key_reads("bench5")
    client = Client(HTTP_HOST="127.0.0.1")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {os.environ['BENCH_TOKEN']}"}
    order = json.dumps({"items": [{"id": "bench3", "quantity": 1}], "payment_token": "tok_success"})
    counts = {
        "detail (cold)": count(client, "get", "/api/products/bench2", 200),
        "detail (warm)": count(client, "get", "/api/products/bench2", 200),
        "list (20, cold)": count(client, "get", "/api/products?page_size=20", 200),
        "list (20, warm)": count(client, "get", "/api/products?page_size=20", 200),
        "order create": count(
            client,
            "post",
            "/api/orders",
            201,
            data=order,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            **auth,
        ),
    }
    # A checkout of a cart the run left (3 lines, a voucher, shipping), as its buyer.
    cart, access = os.environ["BENCH_CHECKOUT"].split()
    counts["checkout"] = count(
        client,
        "post",
        f"/api/carts/{cart}/checkout",
        201,
        data=json.dumps({"payment_token": "tok_success"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_AUTHORIZATION=f"Bearer {access}",
    )
    print(json.dumps({"check": check, "queries": counts, "cold_key_db_reads": cold_readers}))


if __name__ == "__main__":
    main()
