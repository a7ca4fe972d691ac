"""Stock under real concurrency: threads, each on its own database connection, calling
the services directly (the live-server versions are in test_live_concurrency.py)."""

from __future__ import annotations

import pytest

from apps.inventory import services
from apps.inventory.exceptions import OutOfStock
from apps.inventory.models import StockMovement
from apps.inventory.services import StockLine
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.inventory.threads import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def test_thirty_buyers_of_ten_units_exactly_ten_succeed():
    variant = make_product(stock=10).variant

    results = run_at_once(
        30,
        lambda i: services.allocate(lines=[StockLine(variant.pk, 1)], reference=f"buyer-{i}"),
    )

    failures = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(failures) == 10
    assert len(failures) == 20
    assert all(isinstance(f, OutOfStock) for f in failures)
    assert stock_of(variant.pk) == 0
    assert StockMovement.objects.filter(variant=variant, reason="order").count() == 10
    assert_ledger_matches(variant.pk)


def test_thirty_buyers_of_units_split_over_two_warehouses_never_oversell_either():
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    variant = make_product(sku="split").variant
    put_stock(variant.pk, a, 7)
    put_stock(variant.pk, b, 5)

    results = run_at_once(
        30,
        lambda i: services.allocate(lines=[StockLine(variant.pk, 2)], reference=f"buyer-{i}"),
    )

    assert sum(not isinstance(r, Exception) for r in results) == 6  # 12 units, 2 each
    assert all(isinstance(r, OutOfStock) for r in results if isinstance(r, Exception))
    assert (stock_of(variant.pk, a.pk), stock_of(variant.pk, b.pk)) == (0, 0)
    # One buyer got the last unit of `a` and the first of `b`.
    assert StockMovement.objects.filter(variant=variant, reason="order").count() == 7
    assert_ledger_matches(variant.pk)


def test_opposite_order_multi_line_allocations_never_deadlock():
    a, b = make_product(stock=1000).variant, make_product(stock=1000).variant

    def allocate(i: int) -> None:
        lines = [StockLine(a.pk, 1), StockLine(b.pk, 1)]
        for round_ in range(10):
            ordered = lines if (i + round_) % 2 else list(reversed(lines))
            services.allocate(lines=ordered, reference=f"r{i}-{round_}")

    results = run_at_once(8, allocate)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert stock_of(a.pk) == 1000 - 80
    assert stock_of(b.pk) == 1000 - 80
    assert_ledger_matches(a.pk, b.pk)


def test_concurrent_multi_line_allocations_are_all_or_nothing():
    """Each buyer wants one of each; only as many complete pairs as the scarcer variant."""
    a, b = make_product(stock=5).variant, make_product(stock=3).variant

    results = run_at_once(
        12,
        lambda i: services.allocate(
            lines=[StockLine(a.pk, 1), StockLine(b.pk, 1)], reference=f"pair-{i}"
        ),
    )

    succeeded = [r for r in results if not isinstance(r, Exception)]
    assert len(succeeded) == 3
    assert stock_of(a.pk) == 2
    assert stock_of(b.pk) == 0
    assert_ledger_matches(a.pk, b.pk)
