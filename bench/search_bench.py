"""Product search over 100,000 products: p50/p95/p99 of `GET /api/products?search=...`.

    .venv/bin/python bench/search_bench.py [--products 100000] [--rounds 20] [--keep|--reuse]

Builds a throwaway PostgreSQL database (`ecommerce_search_bench`), migrates it, bulk-loads
products with realistic names ("Classic Navy Cotton T-Shirt") and SKUs, then sends a mix
of searches (one to three words, short prefixes, typos, words that never meet, SKU
fragments) through the whole Django stack in-process (middleware, routing, filters, COUNT
and page queries, serialization). The public list cache is bypassed so every request
reaches PostgreSQL: the figures are the cost of a cache miss. Prints latency percentiles
per kind of query, for the whole request and for its SQL alone, and the plan PostgreSQL
picks for one query of each kind. A benchmark that prints figures, not a test: the target
is p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import env_for  # noqa: E402

DB = "ecommerce_search_bench"
REDIS_DB = 11

ADJECTIVES = [
    "Classic", "Slim", "Relaxed", "Vintage", "Organic", "Heavy", "Light", "Premium",
    "Everyday", "Travel", "Kids", "Oversized", "Cropped", "Soft", "Rugged", "Essential",
]  # fmt: skip
COLOURS = [
    "Black", "White", "Navy", "Blue", "Red", "Green", "Olive", "Grey", "Sand", "Rust",
    "Pink", "Yellow", "Teal", "Burgundy", "Cream", "Charcoal",
]  # fmt: skip
MATERIALS = [
    "Cotton", "Linen", "Wool", "Denim", "Leather", "Ceramic", "Bamboo", "Steel", "Oak",
    "Canvas", "Silk", "Cashmere", "Fleece", "Glass", "Copper", "Walnut",
]  # fmt: skip
NOUNS = {
    "TEE": "T-Shirt", "SWT": "Sweater", "JNS": "Jeans", "SCF": "Scarf", "MUG": "Mug",
    "LMP": "Lamp", "BAG": "Tote Bag", "JKT": "Jacket", "CAP": "Cap", "SCK": "Socks",
    "BWL": "Bowl", "CHR": "Chair", "TBL": "Table", "BLT": "Belt", "HDY": "Hoodie",
    "SHT": "Shirt", "DRS": "Dress", "BTL": "Bottle", "PLW": "Pillow", "RUG": "Rug",
}  # fmt: skip
SIZES = ["XS", "S", "M", "L", "XL"]

QUERIES = {
    "1 term": ["shirt", "mug", "linen", "navy", "lamp", "cashmere", "hoodie", "walnut"],
    "2 terms": ["blue shirt", "wool scarf", "ceramic mug", "black jeans", "oak table"],
    "3 terms": ["classic navy cotton", "slim black jeans", "organic cotton tee", "red wool cap"],
    "prefix": ["sh", "blu", "cer", "swe", "ho", "wal"],
    "typo": ["shrit", "cotten", "jaens", "sweatr", "lampp"],
    # Common words that never meet: the planner must not walk the table looking for them.
    "no match": ["mug jeans", "lamp socks", "chair scarf"],
    "sku": ["TEE-NAV", "mug-bla", "004217", "JKT-RED-L"],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20, help="times each query is sent")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="search a database kept by an earlier --keep run"
    )
    return parser.parse_args()


def admin_connection() -> Any:
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    return conn


def create_database() -> None:
    conn = admin_connection()  # not `with conn`: that opens a transaction
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {DB}")
    conn.close()


def drop_database() -> None:
    conn = admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    conn.close()


def setup_django() -> None:
    os.environ.update(
        env_for(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
            REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
            CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
            OTEL_TRACES_SAMPLER_RATIO="0",
        )
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "ecommerce.settings"
    import django

    django.setup()


def load_products(count: int) -> None:
    from decimal import Decimal

    from apps.catalog.models import Category, Product

    rng = random.Random(42)
    categories = [
        Category.objects.create(name=name, slug=name.lower().replace(" ", "-"))
        for name in ("Clothing", "Home", "Kitchen", "Accessories", "Furniture")
    ]
    codes = list(NOUNS)
    batch: list[Product] = []
    for n in range(1, count + 1):
        code = rng.choice(codes)
        colour = rng.choice(COLOURS)
        size = rng.choice(SIZES)
        batch.append(
            Product(
                sku=f"{code}-{colour[:3].upper()}-{size}-{n:06d}",
                name=f"{rng.choice(ADJECTIVES)} {colour} {rng.choice(MATERIALS)} {NOUNS[code]}",
                price=Decimal(rng.randint(199, 49999)) / 100,
                category=rng.choice(categories),
                is_active=rng.random() > 0.05,
                stock=rng.randint(0, 50),
            )
        )
        if len(batch) == 5000:
            Product.objects.bulk_create(batch)
            batch.clear()
    Product.objects.bulk_create(batch)


def prepare_tables() -> None:
    """Migrate (a --reuse database gets new indexes too), then vacuum so the planner sees
    the GIN indexes flushed and the table's statistics, as autovacuum would leave them."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE catalog_product")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50):6.1f} ms  p95 {percentile(samples, 95):6.1f} ms  "
        f"p99 {percentile(samples, 99):6.1f} ms  mean {statistics.fmean(samples):6.1f} ms"
    )


def plan_summary(term: str) -> str:
    """The plan nodes PostgreSQL picks for the page query of one search."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from apps.catalog import selectors
    from apps.catalog.search import ProductSearchFilter

    request = Request(RequestFactory().get("/api/products", {"search": term}))
    queryset = ProductSearchFilter().filter_queryset(request, selectors.products(), None)
    plan = queryset.order_by("name", "pk")[:20].explain()
    nodes = [line.strip().split("  (")[0].lstrip("-> ") for line in plan.splitlines()]
    return " / ".join(node for node in nodes if node and not node.startswith(("Filter", "Recheck")))


def run(rounds: int) -> None:
    from django.db import connection
    from django.test import Client

    from apps.catalog import selectors

    # Every request reaches the database: the figures are those of a cache miss.
    selectors.product_list_json = lambda *, query, render: render()  # type: ignore[assignment]
    client = Client(HTTP_HOST="127.0.0.1")
    samples: dict[str, list[float]] = {kind: [] for kind in QUERIES}
    matches: dict[str, int] = {}
    for terms in QUERIES.values():  # warm-up, and the match counts
        for term in terms:
            response = client.get("/api/products", {"search": term})
            assert response.status_code == 200, response.content
            matches[term] = response.json()["count"]
    sql: list[float] = []  # of each request: the time its SQL statements took

    def timed(execute: Any, sql_text: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            sql[-1] += (time.perf_counter() - started) * 1000

    sql_samples: list[float] = []
    with connection.execute_wrapper(timed):
        for _ in range(rounds):
            for kind, terms in QUERIES.items():
                for term in terms:
                    sql.append(0.0)
                    started = time.perf_counter()
                    response = client.get("/api/products", {"search": term})
                    samples[kind].append((time.perf_counter() - started) * 1000)
                    sql_samples.append(sql[-1])
                    assert response.status_code == 200
    everything = [s for kind in samples.values() for s in kind]
    print(f"\n{len(everything)} searches, {rounds} rounds of {sum(map(len, QUERIES.values()))}")
    print("whole request (Django stack in-process, no HTTP server):")
    print(f"{'all':>10}: {figures(everything)}")
    for kind, kind_samples in samples.items():
        print(f"{kind:>10}: {figures(kind_samples)}")
    print("its SQL only (COUNT and page queries, measured around the driver):")
    print(f"{'all':>10}: {figures(sql_samples)}")
    print("\nmatches per query:")
    for kind, terms in QUERIES.items():
        print(f"  {kind}: " + ", ".join(f"{t!r} {matches[t]}" for t in terms))
    print("\nplan of the page query, one per kind:")
    for terms in QUERIES.values():
        print(f"  {terms[0]!r}: {plan_summary(terms[0])}")


def main() -> None:
    args = parse_args()
    if not args.reuse:
        create_database()
    try:
        setup_django()
        if not args.reuse:
            from django.core.management import call_command

            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            load_products(args.products)
            print(f"loaded {args.products} products in {time.perf_counter() - started:.1f} s")
        prepare_tables()
        run(args.rounds)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
