"""`manage.py seed_demo`, catalog part: four categories and prod1..prod20 with stock, once."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from apps.catalog.models import Category, Product, StockMovement
from tests.catalog.asserts import catalog_snapshot
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches

DEMO_SKUS = [f"prod{n}" for n in range(1, 21)]


def seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def catalog_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("  catalog ")]
    return line


@pytest.fixture(autouse=True)
def _demo_password(settings: Any) -> None:
    # The users app seeds accounts in the same command; a fixed password keeps it quiet.
    settings.DEMO_PASSWORD = "given-demo-passphrase"


@pytest.mark.django_db
def test_seed_demo_creates_four_categories_and_twenty_products_with_stock(settings):
    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == "  catalog   4 categories, prod1..prod20 (20 new)"
    assert sorted(Category.objects.values_list("slug", "parent__slug", "is_active")) == [
        ("apparel", None, True),
        ("home", None, True),
        ("kitchen", "home", True),
        ("t-shirts", "apparel", True),
    ]
    products = {p.sku: p for p in Product.objects.select_related("category")}
    assert sorted(products) == sorted(DEMO_SKUS)
    assert {sku: p.stock for sku, p in products.items()} == {
        f"prod{n}": 25 + 5 * n for n in range(1, 21)
    }
    assert all(
        p.is_active and p.currency == settings.STORE_CURRENCY and p.price > 0
        for p in products.values()
    )
    assert (products["prod1"].name, products["prod1"].price, products["prod1"].category.slug) == (
        "Classic T-shirt #1",
        Decimal("7.99"),
        "t-shirts",
    )
    assert (products["prod20"].price, products["prod20"].category.slug) == (
        Decimal("64.99"),
        "kitchen",
    )
    assert StockMovement.objects.count() == 20
    assert set(StockMovement.objects.values_list("reason", "note")) == {
        ("restock", "initial stock")
    }
    assert_ledger_matches(*(p.pk for p in products.values()))


@pytest.mark.django_db
def test_seed_demo_twice_creates_nothing_and_moves_no_stock():
    # given
    seed_demo()
    before = catalog_snapshot()

    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == "  catalog   4 categories, prod1..prod20 (0 new)"
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_seed_demo_leaves_an_existing_product_of_the_same_sku_alone():
    # given: someone already sells a PROD3 (any letter case counts)
    existing = make_product(sku="PROD3", name="Real product", price="2.50", stock=1)

    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == "  catalog   4 categories, prod1..prod20 (19 new)"
    existing.refresh_from_db()
    assert (existing.name, existing.price, existing.stock, existing.category) == (
        "Real product",
        Decimal("2.50"),
        1,
        None,
    )
    assert Product.objects.count() == 20
    assert StockMovement.objects.filter(product=existing).count() == 1
