"""Stock under real concurrency: threads, each on its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from apps.catalog import services
from apps.catalog.exceptions import OutOfStock
from apps.catalog.models import Product, StockMovement
from apps.catalog.services import StockLine
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; returns results or exceptions."""
    barrier = threading.Barrier(count)

    def one(i: int) -> Any:
        try:
            barrier.wait()
            return work(i)
        except Exception as exc:  # collected for the assertions
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_thirty_buyers_of_ten_units_exactly_ten_succeed():
    product = make_product(stock=10)

    results = run_at_once(
        30,
        lambda i: services.reserve_stock(lines=[StockLine(product.pk, 1)], reference=f"buyer-{i}"),
    )

    failures = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(failures) == 10
    assert len(failures) == 20
    assert all(isinstance(f, OutOfStock) for f in failures)
    assert Product.objects.get(pk=product.pk).stock == 0
    assert StockMovement.objects.filter(product=product, reason="order").count() == 10
    assert_ledger_matches(product.pk)


def test_opposite_order_multi_line_reservations_never_deadlock():
    a, b = make_product(stock=1000), make_product(stock=1000)

    def reserve(i: int) -> None:
        lines = [StockLine(a.pk, 1), StockLine(b.pk, 1)]
        for round_ in range(10):
            ordered = lines if (i + round_) % 2 else list(reversed(lines))
            services.reserve_stock(lines=ordered, reference=f"r{i}-{round_}")

    results = run_at_once(8, reserve)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert Product.objects.get(pk=a.pk).stock == 1000 - 80
    assert Product.objects.get(pk=b.pk).stock == 1000 - 80
    assert_ledger_matches(a.pk, b.pk)


def test_concurrent_multi_line_reservations_are_all_or_nothing():
    """Each buyer wants one of each; only as many complete pairs as the scarcer product."""
    a, b = make_product(stock=5), make_product(stock=3)

    results = run_at_once(
        12,
        lambda i: services.reserve_stock(
            lines=[StockLine(a.pk, 1), StockLine(b.pk, 1)], reference=f"pair-{i}"
        ),
    )

    succeeded = [r for r in results if not isinstance(r, Exception)]
    assert len(succeeded) == 3
    assert Product.objects.get(pk=a.pk).stock == 2
    assert Product.objects.get(pk=b.pk).stock == 0
    assert_ledger_matches(a.pk, b.pk)
