"""Checkout under real concurrency: threads released together, one connection each."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.checkout import services
from apps.checkout.exceptions import CartNotOpen, CheckoutProblems
from apps.checkout.models import Cart, CartStatus
from apps.checkout.tasks import release_voucher_use_task
from apps.inventory.exceptions import OutOfStock
from apps.inventory.invariants import stock_matches_ledger
from apps.inventory.models import StockMovement
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.pricing.exceptions import VoucherExhausted
from apps.pricing.models import Voucher, VoucherUse
from ecommerce.invariants import CheckContext
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.checkout.helpers import BERLIN
from tests.inventory.threads import run_at_once
from tests.pricing.factories import make_voucher
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Charges answer 500 and change nothing: the order stays pending_payment for the races.
UNSETTLED = "tok_processing_error"


def cart_for(user: Any, sku: str, quantity: int = 1, voucher: str = "") -> Cart:
    cart, _ = services.create_cart(user=user)
    services.add_line(cart=cart, sku=sku, quantity=quantity)
    return services.update_cart(cart=cart, shipping_address=BERLIN, voucher_code=voucher)


def ledger_is_consistent() -> None:
    outcome = stock_matches_ledger(CheckContext(now=timezone.now(), since=None, grace=timedelta(0)))
    assert outcome.checked > 0
    assert not outcome.breaks, outcome.breaks


@pytest.mark.parametrize("scarce", ["stock", "voucher"])
def test_two_hundred_checkouts_of_the_last_ten_make_ten_orders(scarce):
    """The last 10 units, or the last 10 uses of a voucher every cart carries."""
    product = make_product(sku="LAST", stock=10 if scarce == "stock" else 500, price="5.00")
    voucher = make_voucher("LAST10", value="10", usage_limit=10 if scarce == "voucher" else None)
    buyers = [UserFactory() for _ in range(200)]
    carts = [cart_for(buyer, "LAST", voucher="LAST10") for buyer in buyers]
    workers = 32
    barrier = threading.Barrier(workers)

    def check_out(i: int) -> Any:
        try:
            if i < workers:
                barrier.wait()
            order, _ = services.checkout(
                cart=carts[i],
                user=buyers[i],
                payment_token=UNSETTLED,
                idempotency_key=f"checkout-{i}",
            )
            return order
        except Exception as exc:  # collected for the assertions
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(check_out, range(200)))

    orders = [r for r in results if isinstance(r, Order)]
    refusals = OutOfStock | CheckoutProblems | VoucherExhausted
    refused = [r for r in results if isinstance(r, refusals)]
    assert len(orders) == 10
    assert len(refused) == 190, [r for r in results if not isinstance(r, Order)][:3]
    assert Order.objects.count() == 10
    assert stock_of(product.variant.pk) == (0 if scarce == "stock" else 490)
    assert StockMovement.objects.filter(variant=product.variant, reason="order").count() == 10
    assert Voucher.objects.get(pk=voucher.pk).used_count == 10
    assert set(VoucherUse.objects.values_list("reference", flat=True)) == {
        f"order:{order.public_id}" for order in orders
    }
    assert_ledger_matches(product.variant.pk)
    ledger_is_consistent()
    assert Cart.objects.filter(status=CartStatus.CHECKED_OUT).count() == 10
    assert Cart.objects.filter(status=CartStatus.OPEN).count() == 190


@pytest.mark.parametrize("same_key", [True, False])
def test_two_checkouts_of_one_cart_at_once_make_one_order(same_key):
    product = make_product(sku="TEE", stock=10, price="5.00")
    buyer = UserFactory()
    cart = cart_for(buyer, "TEE", 2)

    def check_out(i: int) -> Any:
        key = "same" if same_key else f"key-{i}"
        return services.checkout(
            cart=cart, user=buyer, payment_token=UNSETTLED, idempotency_key=key, fingerprint="f"
        )

    results = run_at_once(2, check_out)

    assert Order.objects.count() == 1
    assert stock_of(product.variant.pk) == 8
    order = Order.objects.get()
    if same_key:
        assert sorted(created for _, created in results) == [False, True]
        assert {o.pk for o, _ in results} == {order.pk}
    else:
        outcomes = sorted(type(r).__name__ for r in results)
        assert outcomes == ["CartNotOpen", "tuple"]
        assert next(r for r in results if isinstance(r, CartNotOpen)).extra["order_id"] == str(
            order.public_id
        )


def test_hold_expiry_racing_a_late_payment_returns_stock_and_voucher_once():
    product = make_product(sku="HOLD", stock=50, price="10.00")
    voucher = make_voucher("HOLD10", value="10", usage_limit=100)
    winners = set()
    for round_ in range(6):
        buyer = UserFactory()
        order, _ = services.checkout(
            cart=cart_for(buyer, "HOLD", 2, voucher="HOLD10"),
            user=buyer,
            payment_token=UNSETTLED,
        )
        assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
        used_before = Voucher.objects.get(pk=voucher.pk).used_count
        stock_before = stock_of(product.variant.pk)

        def race(i: int, order_id: int = order.pk, n: int = round_) -> Any:
            if i == 0:
                return orders_services.expire_order(order_id=order_id)
            return orders_services.mark_paid(order_id=order_id, charge_id=f"ch_{n}")

        results = run_at_once(2, race)
        assert not [r for r in results if isinstance(r, Exception)], results
        # The release handler runs on order.expired already; run it twice more, as a
        # redelivered message would.
        release_voucher_use_task(order.pk)
        release_voucher_use_task(order.pk)

        status = Order.objects.get(pk=order.pk).status
        winners.add(status)
        use = VoucherUse.objects.get(reference=f"order:{order.public_id}")
        used = Voucher.objects.get(pk=voucher.pk).used_count
        if status == OrderStatus.EXPIRED:
            assert results[0] is True
            assert used == used_before - 1
            assert use.released_at is not None
            assert stock_of(product.variant.pk) == stock_before + 2
        else:
            assert status == OrderStatus.PAID
            assert results[0] is False
            assert used == used_before
            assert use.released_at is None
            assert stock_of(product.variant.pk) == stock_before
        # Expiring again changes nothing.
        assert orders_services.expire_order(order_id=order.pk) is False
        assert Voucher.objects.get(pk=voucher.pk).used_count == used

    assert_ledger_matches(product.variant.pk)
    ledger_is_consistent()
    released = VoucherUse.objects.filter(released_at__isnull=False).count()
    assert Voucher.objects.get(pk=voucher.pk).used_count == 6 - released
    assert winners <= {OrderStatus.EXPIRED, OrderStatus.PAID}


def test_two_sign_ins_at_once_with_two_anonymous_carts_leave_one_open_cart():
    make_product(sku="TEE", stock=10)
    make_product(sku="MUG", stock=10)
    buyer = UserFactory()
    tokens = []
    for sku in ("TEE", "MUG"):
        cart, _ = services.create_cart(user=None)
        services.add_line(cart=cart, sku=sku, quantity=2)
        tokens.append(cart.token)

    results = run_at_once(
        2, lambda i: services.merge_cart_into_customer(user=buyer, token=tokens[i])
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    open_cart = Cart.objects.get(user=buyer, status=CartStatus.OPEN)
    assert sorted(open_cart.lines.values_list("variant__sku", "quantity")) == [
        ("MUG", 2),
        ("TEE", 2),
    ]
    assert Cart.objects.filter(status=CartStatus.MERGED).count() == 1
