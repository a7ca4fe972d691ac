"""Allocation under real concurrency: buyers send real HTTP orders to gunicorn (several
worker processes, each with its own database connection) on the test database.

Checked after every scenario: no warehouse below zero, per warehouse the stock equals its
ledger sum, the units on the orders equal the units the ledger took, and PostgreSQL
counted no deadlock.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework_simplejwt.tokens import AccessToken

from apps.inventory.models import StockMovement
from apps.orders.models import Order, OrderItem
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse, put_stock
from tests.servers import GunicornServer, project_env
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow]

WORKERS = 4
CLIENT_TIMEOUT_SECONDS = 30.0
ORDERS = 120


@dataclass
class Shop:
    url: str
    log_path: Path


@pytest.fixture
def shop(tmp_path: Path, transactional_db: Any) -> Iterator[Shop]:
    """gunicorn with WORKERS sync workers on the test database; rate limits off."""
    env = project_env(
        RATE_LIMIT_ENABLED="0",
        ACCESS_LOG="0",
        OTEL_ENABLED="0",
        METRICS_DIR=str(tmp_path / "metrics"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "web"),
        CACHE_KEY_PREFIX=f"live-{uuid.uuid4().hex[:8]}",
    )
    log_path = tmp_path / "web.log"
    server = GunicornServer(workers=WORKERS, env=env, log_path=log_path)
    try:
        yield Shop(url=server.url, log_path=log_path)
    finally:
        assert server.stop() == 0


def tokens(count: int) -> list[str]:
    """Access tokens of `count` distinct customers, valid for the whole test."""
    result = []
    for _ in range(count):
        token = AccessToken.for_user(UserFactory(roles=[Role.CUSTOMER]))
        token.set_exp(lifetime=timedelta(minutes=10))
        result.append(str(token))
    return result


def post_orders(shop: Shop, bodies: list[tuple[str, dict[str, Any]]], *, threads: int) -> list:
    """POST every (token, body) at once from `threads` client threads; the responses."""

    def post(job: tuple[str, dict[str, Any]]) -> httpx.Response:
        token, body = job
        return client.post(
            "/api/orders",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )

    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with (
        httpx.Client(base_url=shop.url, timeout=CLIENT_TIMEOUT_SECONDS, limits=limits) as client,
        ThreadPoolExecutor(threads) as pool,
    ):
        return list(pool.map(post, bodies))


def deadlocks() -> int:
    """Deadlocks PostgreSQL has detected in this database since its statistics began."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def assert_no_deadlock(shop: Shop, before: int) -> None:
    time.sleep(1.0)  # backends report their statistics at most once a second
    assert deadlocks() == before
    log = shop.log_path.read_text(errors="replace")
    assert "deadlock" not in log.lower()
    assert "WORKER TIMEOUT" not in log


def assert_orders_match_ledger(placed: list[str]) -> None:
    """Each placed order's lines equal what its ledger rows took, variant by variant; no
    refused order left a ledger row."""
    for public_id in placed:
        order = Order.objects.get(public_id=public_id)
        items = dict(OrderItem.objects.filter(order=order).values_list("variant_id", "quantity"))
        taken = {
            variant_id: -total
            for variant_id, total in StockMovement.objects.filter(reference=f"order:{public_id}")
            .values("variant_id")
            .annotate(total=Sum("delta"))
            .values_list("variant_id", "total")
        }
        assert items == taken, public_id
    references = set(
        StockMovement.objects.filter(reason="order").values_list("reference", flat=True)
    )
    assert references == {f"order:{public_id}" for public_id in placed}


def test_two_hundred_buyers_never_oversell_either_warehouse(shop: Shop) -> None:
    # given: one variant, 30 units in warehouse A and 20 in B (a fresh `main` holds none)
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    tee = make_product(sku="live-tee", price="9.50").variant
    put_stock(tee.pk, a, 30)
    put_stock(tee.pk, b, 20)
    buyers = tokens(200)
    body = {"items": [{"id": "live-tee", "quantity": 1}], "payment_token": "tok_success"}
    before = deadlocks()

    # when: 200 buyers order one unit each, 50 requests in flight at a time
    started = time.monotonic()
    responses = post_orders(shop, [(token, body) for token in buyers], threads=50)
    elapsed = time.monotonic() - started

    # then: exactly 50 sold, 150 refused as out of stock, nothing else
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 150}, statuses
    refused = [r for r in responses if r.status_code == 409]
    assert {r.headers["Content-Type"] for r in refused} == {"application/problem+json"}
    assert {r.json()["code"] for r in refused} == {"out_of_stock"}
    placed = [r.json()["id"] for r in responses if r.status_code == 201]
    assert (stock_of(tee.pk, a.pk), stock_of(tee.pk, b.pk)) == (0, 0)
    taken = dict(
        StockMovement.objects.filter(variant=tee, reason="order")
        .values("warehouse__slug")
        .annotate(total=Sum("delta"))
        .values_list("warehouse__slug", "total")
    )
    assert taken == {"a": -30, "b": -20}
    sold = OrderItem.objects.filter(order__public_id__in=placed).aggregate(s=Sum("quantity"))
    assert sold["s"] == 50
    assert_orders_match_ledger(placed)
    assert_ledger_matches(tee.pk)
    assert_no_deadlock(shop, before)
    print(f"\n200 buyers over {WORKERS} gunicorn workers: 50 placed, 150 refused in {elapsed:.1f}s")


def test_opposite_order_orders_across_two_warehouses_never_deadlock(shop: Shop) -> None:
    # given: X lives in warehouse A, Y in warehouse B, Z in both: every order locks and
    # changes rows in both warehouses. X runs out first, so some orders are refused.
    a, b = make_warehouse("a", priority=1), make_warehouse("b", priority=2)
    x, y, z = (make_product(sku=sku, price="5.00").variant for sku in ("x", "y", "z"))
    put_stock(x.pk, a, 60)
    put_stock(y.pk, b, 200)
    put_stock(z.pk, a, 40)
    put_stock(z.pk, b, 200)
    buyers = tokens(24)
    forward = [{"id": "x", "quantity": 1}, {"id": "z", "quantity": 1}, {"id": "y", "quantity": 1}]
    jobs = [
        (
            buyers[i % len(buyers)],
            {"items": forward if i % 2 else forward[::-1], "payment_token": "tok_success"},
        )
        for i in range(ORDERS)
    ]
    before = deadlocks()

    # when: 120 orders, alternately X-Z-Y and Y-Z-X, 24 in flight at a time
    started = time.monotonic()
    responses = post_orders(shop, jobs, threads=24)
    elapsed = time.monotonic() - started

    # then: each order placed or refused for stock; X's 60 units bound the placed ones
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 60, 409: 60}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    placed = [r.json()["id"] for r in responses if r.status_code == 201]
    assert [stock_of(x.pk, a.pk), stock_of(y.pk, b.pk)] == [0, 140]
    assert [stock_of(z.pk, a.pk), stock_of(z.pk, b.pk)] == [0, 180]  # A first: 40, then B
    assert_orders_match_ledger(placed)
    assert_ledger_matches(x.pk, y.pk, z.pk)
    assert_no_deadlock(shop, before)
    print(f"\n{ORDERS} opposite-order orders over {WORKERS} workers: 60 placed in {elapsed:.1f}s")
