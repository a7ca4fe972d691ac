"""Orders under real concurrency: a live server, threads, one database connection each."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken

from apps.inventory.models import StockMovement
from apps.orders import services
from apps.orders.models import Order, OrderStatus
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def test_hundred_concurrent_orders_for_twenty_five_units(live_server):
    product = make_product(sku="hot", stock=25, price="5.00")
    users = [UserFactory() for _ in range(100)]
    headers = [bearer(user) for user in users]
    body = {"items": [{"id": "hot", "quantity": 1}], "payment_token": "tok_success"}
    barrier = threading.Barrier(20)

    def order(i: int) -> int:
        if i < 20:
            barrier.wait()
        response = httpx.post(
            f"{live_server.url}/api/orders", json=body, headers=headers[i], timeout=30
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(order, range(100)))

    assert statuses.count(201) == 25
    assert statuses.count(409) == 75
    assert stock_of(product.variant.pk) == 0
    assert Order.objects.count() == 25
    assert StockMovement.objects.filter(variant=product.variant, reason="order").count() == 25
    assert_ledger_matches(product.variant.pk)


def test_two_concurrent_requests_with_one_key_make_one_order(live_server):
    product = make_product(sku="p", stock=10)
    headers = {**bearer(UserFactory()), "Idempotency-Key": "same-key"}
    body = {"items": [{"id": "p", "quantity": 1}], "payment_token": "tok_success"}
    barrier = threading.Barrier(8)

    def order(_: int) -> httpx.Response:
        barrier.wait()
        return httpx.post(f"{live_server.url}/api/orders", json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(order, range(8)))

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if "Idempotent-Replayed" not in r.headers) == 1
    assert all(r.json()["code"] == "request_in_progress" for r in responses if r.status_code == 409)
    assert Order.objects.count() == 1
    assert stock_of(product.variant.pk) == 9


def test_two_concurrent_cancels_refund_and_return_stock_once():
    product = make_product(sku="p", stock=5)
    buyer = UserFactory()
    order, _ = services.place_order(
        user=buyer, lines=[services.OrderLine("p", 3)], payment_token="tok_success"
    )
    # Placed outside a transaction: the charge ran (eagerly) on commit.
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    barrier = threading.Barrier(2)

    def cancel(_: int) -> str:
        try:
            barrier.wait()
            services.cancel_order(order_id=order.pk, by=buyer)
            return "cancelled"
        except Exception as exc:
            return type(exc).__name__
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(cancel, range(2)))

    assert outcomes == ["IllegalTransition", "cancelled"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert stock_of(product.variant.pk) == 5
    assert StockMovement.objects.filter(variant=product.variant, reason="cancel").count() == 1
    assert_ledger_matches(product.variant.pk)
