"""Product search and facets over 100,000 variants: p50/p95/p99 of `GET /api/products?...`.

    .venv/bin/python bench/search_bench.py [--products 25000] [--rounds 20] [--keep|--reuse]
        [--database ecommerce_search_bench] [--redis-db 11]

Builds a throwaway PostgreSQL database (`ecommerce_search_bench` unless `--database` names
another, so two people can measure at once), migrates it, bulk-loads
products (4 variants each, so 100,000 variants by default) with realistic names ("Classic
Navy Cotton T-Shirt"), a material per product and a colour and size per variant, a
category tree, and stock in two warehouses serving different countries. Then it sends
requests of several shapes (a search with two facets, the target; a search alone; a
typo; a search with an attribute filter; browsing with facets; filters without a search)
through the whole Django stack in-process (middleware, routing, filters, COUNT, page and
facet queries, serialization). The public list cache is bypassed so every request reaches
PostgreSQL: the figures are the cost of a cache miss. Prints latency percentiles per
shape, for the whole request and for its SQL alone, and the plans PostgreSQL picks for
the target shape. A benchmark that prints figures, not a test: the target is p95 under
50 ms for a search with two facets.
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
VARIANTS_PER_PRODUCT = 4

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
CATEGORIES = {
    "clothing": ["tops", "bottoms", "outerwear"],
    "home": ["kitchen", "living", "bedroom"],
    "accessories": ["bags", "hats", "belts"],
}

TWO_FACETS = "colour,size"
SHAPES: dict[str, list[dict[str, str]]] = {
    # The target: a search with two facets.
    "search+2 facets": [
        {"search": term, "facets": TWO_FACETS}
        for term in ("shirt", "blue shirt", "cotton", "wool scarf", "hoodie", "tee-nav", "navy")
    ],
    "typo+2 facets": [
        {"search": term, "facets": TWO_FACETS} for term in ("tshrit", "cotten", "sweatr")
    ],
    "search only": [{"search": term} for term in ("shirt", "ceramic mug", "lamp", "cashmere")],
    "search+attr+facets": [
        {"search": "shirt", "attr": "colour:black", "facets": TWO_FACETS},
        {"search": "cotton", "attr": "size:m", "facets": TWO_FACETS},
        {"search": "jeans", "attr": ["colour:blue", "colour:navy"], "facets": TWO_FACETS},
    ],
    "filters, no search": [
        {"category": "clothing", "attr": "size:m", "max_price": "50", "country": "DE"},
        {"attr": ["colour:black", "size:l"], "in_stock": "true"},
        {"category": "tops", "min_price": "100", "ordering": "price"},
    ],
    "browse+2 facets": [
        {"facets": TWO_FACETS},
        {"category": "home", "facets": TWO_FACETS},
    ],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=25_000)
    parser.add_argument("--rounds", type=int, default=20, help="times each request is sent")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use a database kept by an earlier --keep run"
    )
    parser.add_argument("--database", default=DB, help="the database to build (or reuse)")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="the Redis db to use")
    args = parser.parse_args()
    if not args.database.replace("_", "").isalnum() or not args.database.isascii():
        parser.error("--database: letters, digits and underscores only")
    return args


def admin_connection() -> Any:
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    return conn


def create_database(name: str) -> None:
    conn = admin_connection()  # not `with conn`: that opens a transaction
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {name}")
    conn.close()


def drop_database(name: str) -> None:
    conn = admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


def setup_django(database: str, redis_db: int) -> None:
    os.environ.update(
        env_for(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
            REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
            CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
            OTEL_TRACES_SAMPLER_RATIO="0",
        )
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "ecommerce.settings"
    import django

    django.setup()


def load_catalog(count: int) -> None:
    """Bulk-load the catalog with the search triggers off for the session, then build
    every search document in one statement (apps.catalog.search.rebuild_search_documents),
    as a restore would; stock rows are written directly (no ledger: nothing reads it)."""
    from decimal import Decimal

    from django.apps import apps
    from django.db import connection, transaction

    from apps.catalog.models import (
        AssignedProductAttribute,
        AssignedVariantAttribute,
        Attribute,
        AttributeValue,
        Category,
        Product,
        ProductType,
        ProductVariant,
    )
    from apps.catalog.search import rebuild_search_documents

    warehouse_model = apps.get_model("inventory", "Warehouse")
    stock_model = apps.get_model("inventory", "Stock")
    zone_model = apps.get_model("shipping", "ShippingZone")
    rng = random.Random(42)

    def attribute(slug: str, names: list[str]) -> dict[str, AttributeValue]:
        made = Attribute.objects.create(name=slug.title(), slug=slug)
        return {
            name: AttributeValue.objects.create(
                attribute=made, name=name, slug=name.lower(), sort_order=order
            )
            for order, name in enumerate(names)
        }

    colours, sizes, materials = (
        attribute("colour", COLOURS),
        attribute("size", SIZES),
        attribute("material", MATERIALS),
    )
    garment = ProductType.objects.create(name="Garment", slug="garment")
    garment.product_attributes.set([materials["Cotton"].attribute])
    garment.variant_attributes.set([colours["Black"].attribute, sizes["M"].attribute])
    leaves = []
    for root, children in CATEGORIES.items():
        parent = Category.objects.create(name=root.title(), slug=root)
        leaves += [
            Category.objects.create(name=child.title(), slug=child, parent=parent)
            for child in children
        ]
    eu_zone = zone_model.objects.create(name="EU", slug="eu", countries=["DE", "AT", "FR"])
    us_zone = zone_model.objects.create(name="US", slug="us", countries=["US"])
    eu = warehouse_model.objects.create(name="Berlin", slug="berlin", priority=1)
    eu.shipping_zones.add(eu_zone)
    us = warehouse_model.objects.create(name="Dallas", slug="dallas", priority=2)
    us.shipping_zones.add(us_zone)

    codes = list(NOUNS)
    with transaction.atomic():
        with connection.cursor() as cursor:  # superuser-only; a benchmark database
            cursor.execute("SET LOCAL session_replication_role = replica")
        for start in range(0, count, 2500):
            products: list[Product] = []
            specs: list[tuple[str, str, str]] = []
            for _ in range(start + 1, min(count, start + 2500) + 1):
                code, colour, material = (
                    rng.choice(codes),
                    rng.choice(COLOURS),
                    rng.choice(MATERIALS),
                )
                specs.append((code, colour, material))
                noun = NOUNS[code]
                products.append(
                    Product(
                        name=f"{rng.choice(ADJECTIVES)} {colour} {material} {noun}",
                        description=f"A {material.lower()} {noun.lower()}, made to last.",
                        price=Decimal("1.00"),
                        category=rng.choice(leaves),
                        product_type=garment,
                        is_active=rng.random() > 0.05,
                    )
                )
            Product.objects.bulk_create(products)
            variants: list[ProductVariant] = []
            variant_values: list[tuple[int, AttributeValue, AttributeValue]] = []
            for product, (code, colour, _) in zip(products, specs, strict=True):
                for index, size in enumerate(rng.sample(SIZES, VARIANTS_PER_PRODUCT)):
                    shade = colour if index < 2 else rng.choice(COLOURS)
                    price = Decimal(rng.randint(199, 19999)) / 100
                    variants.append(
                        ProductVariant(
                            product=product,
                            sku=f"{code}-{shade[:3].upper()}-{size}-{product.pk:06d}",
                            name=f"{size} / {shade}",
                            price=price,
                            is_active=rng.random() > 0.03,
                            sort_order=index,
                        )
                    )
                    variant_values.append((len(variants) - 1, colours[shade], sizes[size]))
            ProductVariant.objects.bulk_create(variants)
            AssignedVariantAttribute.objects.bulk_create(
                AssignedVariantAttribute(
                    variant=variants[index], attribute_id=value.attribute_id, value=value
                )
                for index, colour_value, size_value in variant_values
                for value in (colour_value, size_value)
            )
            AssignedProductAttribute.objects.bulk_create(
                AssignedProductAttribute(
                    product=product,
                    attribute_id=materials[material].attribute_id,
                    value=materials[material],
                )
                for product, (_, _, material) in zip(products, specs, strict=True)
            )
            stock_model.objects.bulk_create(
                stock_model(variant=variant, warehouse=warehouse, quantity=rng.randint(0, 20))
                for variant in variants
                for warehouse in rng.sample([eu, us], rng.randint(1, 2))
            )
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")
            # The product's price: its cheapest active variant (catalog.services.refresh_price).
            cursor.execute(
                "UPDATE catalog_product p SET price = v.price FROM ("
                " SELECT product_id, min(price) AS price FROM catalog_productvariant"
                " WHERE is_active GROUP BY product_id) v WHERE v.product_id = p.id"
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rebuild_search_documents()


def prepare_tables() -> None:
    """Migrate (a --reuse database gets new indexes too), then vacuum so the planner sees
    the GIN indexes flushed and the tables' statistics, as autovacuum would leave them."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        for table in (
            "catalog_product",
            "catalog_productvariant",
            "catalog_assignedvariantattribute",
            "catalog_assignedproductattribute",
            "inventory_stock",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50):6.1f} ms  p95 {percentile(samples, 95):6.1f} ms  "
        f"p99 {percentile(samples, 99):6.1f} ms  mean {statistics.fmean(samples):6.1f} ms"
    )


def plans(params: dict[str, str]) -> list[tuple[str, str]]:
    """EXPLAIN ANALYZE of every query one request runs: (first words of the SQL, plan)."""
    from django.db import connection, transaction
    from django.test import Client

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, sql_params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, sql_params))
        return execute(sql, sql_params, many, context)

    with connection.execute_wrapper(capture):
        Client(HTTP_HOST="127.0.0.1").get("/api/products", params)
    found = []
    settings: tuple[str, Any] | None = None
    with connection.cursor() as cursor:
        for sql, sql_params in captured:
            if "set_config('jit'" in sql:
                settings = (sql, sql_params)  # the next statement's own (read_list)
                continue
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or "set_config" in sql:
                continue
            with transaction.atomic():  # SET LOCAL, rolled back after the statement
                if settings is not None:
                    cursor.execute(*settings)
                    settings = None
                cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", sql_params)
                found.append((sql[:60], "\n".join(row[0] for row in cursor.fetchall())))
                transaction.set_rollback(True)
    return found


def run(rounds: int) -> None:
    from django.db import connection
    from django.test import Client

    from apps.catalog import selectors

    # Every request reaches the database: the figures are those of a cache miss.
    selectors.product_list_json = lambda *, query, render: render()  # type: ignore[assignment]
    client = Client(HTTP_HOST="127.0.0.1")
    counts: dict[str, int] = {}
    for requests in SHAPES.values():  # warm-up, and the match counts
        for params in requests:
            response = client.get("/api/products", params)
            assert response.status_code == 200, response.content
            counts[repr(params)] = response.json()["count"]
    sql: list[float] = []  # of each request: the time its SQL statements took

    def timed(execute: Any, sql_text: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            sql[-1] += (time.perf_counter() - started) * 1000

    samples: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    sql_samples: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    with connection.execute_wrapper(timed):
        for _ in range(rounds):
            for shape, requests in SHAPES.items():
                for params in requests:
                    sql.append(0.0)
                    started = time.perf_counter()
                    response = client.get("/api/products", params)
                    samples[shape].append((time.perf_counter() - started) * 1000)
                    sql_samples[shape].append(sql[-1])
                    assert response.status_code == 200
    total = sum(map(len, samples.values()))
    print(f"\n{total} requests, {rounds} rounds")
    print("whole request (Django stack in-process, no HTTP server):")
    for shape, shape_samples in samples.items():
        print(f"{shape:>20}: {figures(shape_samples)}")
    print("its SQL only (every statement, measured around the driver):")
    for shape, shape_samples in sql_samples.items():
        print(f"{shape:>20}: {figures(shape_samples)}")
    print("\nmatching products per request:")
    for key, count in counts.items():
        print(f"  {count:6d}  {key}")
    target = SHAPES["search+2 facets"][1]
    print(f"\nplans of every query of {target!r}:")
    for head, plan in plans(target):
        print(f"-- {head}...\n{plan}\n")


def main() -> None:
    args = parse_args()
    if not args.reuse:
        create_database(args.database)
    try:
        setup_django(args.database, args.redis_db)
        if not args.reuse:
            from django.core.management import call_command

            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            load_catalog(args.products)
            print(
                f"loaded {args.products} products, {args.products * VARIANTS_PER_PRODUCT} "
                f"variants in {time.perf_counter() - started:.1f} s"
            )
        prepare_tables()
        run(args.rounds)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.database)


if __name__ == "__main__":
    main()
