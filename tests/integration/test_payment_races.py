"""Money races raced for real: threads released together by a barrier, each with its own
database connection, against the payment sandbox over HTTP.

Each pair is a guarantee the code states: a charge that lands after its order ended is
refunded; expiry racing a charge never keeps money for an expired order; two expiry runs
expire an order once; a refund and a fulfilment never both win. The money invariant
checked after every race: an order is paid with exactly one succeeded, unrefunded charge
at the provider, or it is not paid and any charge made for it was refunded in full.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.catalog.models import Product
from apps.inventory.models import StockMovement
from apps.orders import events as order_events
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments import gateway as gateway_module
from apps.payments import services as payments_services
from apps.payments.models import MoneyMovement, MoneyMovementKind, Payment, PaymentStatus
from ecommerce.outbox import registry
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.integration.helpers import wait_until
from tests.integration.processes import SandboxServer
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 900


@pytest.fixture
def provider(sandbox: SandboxServer, shared_cache: None, settings: Any) -> SandboxServer:
    """This process pays through the sandbox process, with locks on the shared Redis."""
    settings.PAYMENT_PROVIDER_URL = sandbox.url
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 5.0
    settings.ORDER_PAYMENT_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    return sandbox


@pytest.fixture
def no_charge_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders placed now queue no charge (the test charges them); other handlers stay, so
    a refund the orders app claims is still done by payments, on commit."""
    charging = {order_events.ORDER_PLACED, payments_services.CHARGE_REQUESTED}
    kept = {topic: h for topic, h in registry._handlers.items() if topic not in charging}
    monkeypatch.setattr(registry, "_handlers", kept)


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=50, price="12.50")


def place(*, quantity: int = 2, overdue: bool = False) -> Order:
    """An order whose charge is not queued (no_charge_requests): the test charges it."""
    order, _ = orders_services.place_order(
        user=UserFactory(),
        lines=[orders_services.OrderLine("lamp", quantity)],
        payment_token="tok_success",
    )
    if overdue:
        created = timezone.now() - timedelta(seconds=TIMEOUT_SECONDS + 1)
        Order.objects.filter(pk=order.pk).update(
            created_at=created, expires_at=created + timedelta(seconds=TIMEOUT_SECONDS)
        )
    return order


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, released together; return results or exceptions."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait(timeout=10)
            return call()
        except Exception as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def refunded_at_provider(sandbox: SandboxServer) -> int:
    return int(sandbox.http.get("/_sandbox/stats").json()["refunds"]["succeeded"])


def assert_money_agrees(order: Order, sandbox: SandboxServer) -> str:
    """The money invariant for one order; returns the order's status."""
    order.refresh_from_db()
    payment = Payment.objects.get(order=order)
    charge = sandbox.charge_for(payment.idempotency_key)
    succeeded = charge is not None and charge["status"] == "succeeded"
    refunded = Decimal(charge["amount_refunded"]) if charge else Decimal(0)
    if order.status in (OrderStatus.PAID, OrderStatus.FULFILLED):
        assert succeeded, f"order {order.pk} {order.status} without a charge"
        assert refunded == 0, f"order {order.pk} {order.status} but refunded"
        assert payment.status == PaymentStatus.SUCCEEDED
    elif succeeded:
        assert refunded == order.total, f"order {order.pk} {order.status} kept {charge}"
        assert payment.status == PaymentStatus.REFUNDED
    # The money ledger says what the provider says: its capture and its refunds, once each.
    ledger = {kind: Decimal(0) for kind in MoneyMovementKind.values}
    for kind, amount in MoneyMovement.objects.filter(order=order).values_list("kind", "amount"):
        ledger[kind] += amount
    captured = Decimal(charge["amount"]) if succeeded else Decimal(0)
    assert (ledger["capture"], ledger["refund"]) == (captured, refunded), f"order {order.pk}"
    return str(order.status)


def history(order: Order) -> list[tuple[str, str]]:
    return list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status"))


class GatedGateway(gateway_module.HttpPaymentGateway):
    """The sandbox over HTTP, with each charge held at a gate before it is sent.

    It stands for a worker paused (GC, SIGSTOP, a slow network) after recording its attempt
    and before its request reaches the provider; every call still goes over HTTP.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url, connect_timeout_seconds=1.0, read_timeout_seconds=5.0)
        self.arrived = threading.Event()
        self.gate = threading.Event()

    def charge(self, **kwargs: Any) -> Any:
        self.arrived.set()
        assert self.gate.wait(timeout=20), "the gate was never opened"
        return super().charge(**kwargs)


@pytest.fixture
def gated(provider: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> GatedGateway:
    gateway = GatedGateway(provider.url)
    monkeypatch.setattr(payments_services, "get_gateway", lambda: gateway)
    return gateway


@pytest.mark.parametrize("ending", ["cancelled", "expired"])
def test_a_charge_landing_after_its_order_ended_is_refunded(
    provider: SandboxServer,
    gated: GatedGateway,
    lamp: Product,
    no_charge_requests: None,
    settings: Any,
    ending: str,
) -> None:
    # The charge lock outlives no paused holder: after 1 s the expiry sweep may take it.
    settings.PAYMENT_LOCK_TTL_SECONDS = 1
    order = place(overdue=ending == "expired")

    def charge() -> str:
        return payments_services.charge_payment(order_id=order.pk)

    def end_the_order_meanwhile() -> Any:
        assert gated.arrived.wait(timeout=10)  # the charge is on its way
        try:
            if ending == "cancelled":
                return orders_services.cancel_order(order_id=order.pk, by=None).status
            deadline = timezone.now() + timedelta(seconds=5)
            while timezone.now() < deadline:  # until the paused holder's lock has expired
                outcome = payments_services.expire_overdue_orders()
                if outcome["expired"]:
                    return outcome
                time.sleep(0.05)
            return outcome
        finally:
            gated.gate.set()

    charged, ended = race(charge, end_the_order_meanwhile)

    assert charged == "refunded_late"
    assert ended in ("cancelled", {"expired": 1, "paid": 0, "declined": 0, "deferred": 0})
    order.refresh_from_db()
    assert order.status == ending
    assert assert_money_agrees(order, provider) == ending
    assert provider.charges() == {"succeeded": 1, "declined": 0, "total": 1}
    assert refunded_at_provider(provider) == 1
    assert history(order) == [("", "pending_payment"), ("pending_payment", ending)]
    assert stock_of(lamp.variant.pk) == 50
    assert_ledger_matches(lamp.variant.pk)


def test_expiry_racing_successful_charges_never_keeps_money_for_an_expired_order(
    provider: SandboxServer, lamp: Product, no_charge_requests: None
) -> None:
    provider.configure(latency_ms=30)
    orders = [place() for _ in range(6)]
    outcomes: list[Any] = []

    for order in orders:
        overdue = timezone.now() - timedelta(seconds=TIMEOUT_SECONDS + 1)
        Order.objects.filter(pk=order.pk).update(  # this one only
            created_at=overdue, expires_at=overdue + timedelta(seconds=TIMEOUT_SECONDS)
        )
        outcomes.append(
            race(
                partial(payments_services.charge_payment, order_id=order.pk),
                payments_services.expire_overdue_orders,
            )
        )
    # Whatever a run deferred (a charge held the lock) the next run settles.
    payments_services.expire_overdue_orders()

    statuses = [assert_money_agrees(order, provider) for order in orders]
    assert set(statuses) <= {OrderStatus.PAID, OrderStatus.EXPIRED}
    assert not any(isinstance(r, Exception) for pair in outcomes for r in pair), outcomes
    paid = statuses.count(OrderStatus.PAID)
    charges = provider.charges()
    assert charges["declined"] == 0
    assert charges["succeeded"] - refunded_at_provider(provider) == paid
    assert stock_of(lamp.variant.pk) == 50 - 2 * paid
    assert_ledger_matches(lamp.variant.pk)


def test_two_expiry_runs_at_once_expire_each_order_once(
    provider: SandboxServer, lamp: Product, no_charge_requests: None
) -> None:
    orders = [place(overdue=True) for _ in range(5)]

    first, second = race(
        payments_services.expire_overdue_orders, payments_services.expire_overdue_orders
    )
    rest = payments_services.expire_overdue_orders()  # what the lock made either defer

    assert first["expired"] + second["expired"] + rest["expired"] == 5, (first, second, rest)
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.EXPIRED
        assert history(order) == [("", "pending_payment"), ("pending_payment", "expired")]
        assert list(
            StockMovement.objects.filter(reference=f"order:{order.public_id}")
            .order_by("pk")
            .values_list("delta", "reason")
        ) == [(-2, "order"), (2, "expiry")]
    assert stock_of(lamp.variant.pk) == 50
    assert_ledger_matches(lamp.variant.pk)


def test_two_expiries_of_one_order_at_once_expire_it_once_under_the_row_lock(
    lamp: Product, no_charge_requests: None
) -> None:
    # Past the charge lock (as when its TTL ran out): the row lock alone decides.
    order = place()

    outcomes = race(*[lambda: orders_services.expire_order(order_id=order.pk)] * 4)

    assert sorted(outcomes) == [False, False, False, True]
    assert history(order) == [("", "pending_payment"), ("pending_payment", "expired")]
    assert StockMovement.objects.filter(reference=f"order:{order.public_id}").count() == 2
    assert stock_of(lamp.variant.pk) == 50
    assert_ledger_matches(lamp.variant.pk)


class PairedGateway(gateway_module.HttpPaymentGateway):
    """The sandbox over HTTP, each charge held until a second one is on its way too: two
    workers calling the provider for one order at once."""

    def __init__(self, url: str) -> None:
        super().__init__(url, connect_timeout_seconds=1.0, read_timeout_seconds=5.0)
        self.both = threading.Barrier(2)

    def charge(self, **kwargs: Any) -> Any:
        self.both.wait(timeout=10)
        return super().charge(**kwargs)


def test_two_deliveries_of_order_placed_at_once_open_one_payment_and_charge_once(
    provider: SandboxServer, lamp: Product, no_charge_requests: None
) -> None:
    order = place()
    assert not Payment.objects.filter(order=order).exists()

    outcomes = race(*[partial(payments_services.charge_payment, order_id=order.pk)] * 2)
    # The one that found the lock taken ("busy") comes back later, as its task does.
    again = payments_services.charge_payment(order_id=order.pk)

    assert sorted(outcomes) in (["busy", "succeeded"], ["noop", "succeeded"]), outcomes
    assert again == "noop"
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 1)
    assert provider.charges() == {"succeeded": 1, "declined": 0, "total": 1}
    assert assert_money_agrees(order, provider) == OrderStatus.PAID
    assert history(order) == [("", "pending_payment"), ("pending_payment", "paid")]


def test_two_deliveries_without_the_charge_lock_still_open_one_payment_and_charge_once(
    provider: SandboxServer,
    lamp: Product,
    no_charge_requests: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if the charge lock were lost (Redis restarted mid-charge): the payment's one-to-one
    order and the provider's idempotency key alone keep it to one payment and one charge."""
    gateway = PairedGateway(provider.url)
    monkeypatch.setattr(payments_services, "get_gateway", lambda: gateway)
    monkeypatch.setattr(
        payments_services, "distributed_lock", lambda *args, **kwargs: contextlib.nullcontext()
    )
    order = place()

    outcomes = race(*[partial(payments_services.charge_payment, order_id=order.pk)] * 2)

    assert outcomes == ["succeeded", "succeeded"]
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.attempts) == (PaymentStatus.SUCCEEDED, 2)
    assert provider.charges() == {"succeeded": 1, "declined": 0, "total": 1}
    assert assert_money_agrees(order, provider) == OrderStatus.PAID
    assert history(order) == [("", "pending_payment"), ("pending_payment", "paid")]
    assert stock_of(lamp.variant.pk) == 48
    assert_ledger_matches(lamp.variant.pk)


@pytest.fixture
def paid_order(provider: SandboxServer, lamp: Product, no_charge_requests: None) -> Order:
    order = place()
    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def test_a_fulfilment_landing_during_a_refund_is_refused(
    provider: SandboxServer, paid_order: Order, lamp: Product
) -> None:
    # The provider takes 800 ms to refund: the fulfilment lands while it works.
    provider.configure(latency_ms=800)
    refund_started = threading.Event()

    def refund() -> Any:
        refund_started.set()
        return orders_services.refund_order(order_id=paid_order.pk, by=None)

    def fulfil() -> Any:
        assert refund_started.wait(timeout=5)
        # Once the refund has claimed the order (committed), it is at the provider for 800 ms.
        wait_until(
            lambda: Order.objects.filter(pk=paid_order.pk, status=OrderStatus.REFUNDING).exists(),
            what="the refund claimed the order",
            timeout_seconds=5,
        )
        return orders_services.fulfil_order(order_id=paid_order.pk, by=None)

    refunded, fulfilled = race(refund, fulfil)

    assert type(fulfilled).__name__ == "IllegalTransition", fulfilled
    assert isinstance(refunded, Order), refunded
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.REFUNDED
    assert assert_money_agrees(paid_order, provider) == OrderStatus.REFUNDED
    assert refunded_at_provider(provider) == 1
    assert history(paid_order)[-2:] == [("paid", "refunding"), ("refunding", "refunded")]
    assert stock_of(lamp.variant.pk) == 50
    assert_ledger_matches(lamp.variant.pk)


def test_a_refund_landing_after_a_fulfilment_moves_no_money(
    provider: SandboxServer, paid_order: Order, lamp: Product
) -> None:
    fulfilled_first = threading.Event()

    def fulfil() -> Any:
        try:
            return orders_services.fulfil_order(order_id=paid_order.pk, by=None)
        finally:
            fulfilled_first.set()

    def refund() -> Any:
        assert fulfilled_first.wait(timeout=5)
        return orders_services.refund_order(order_id=paid_order.pk, by=None)

    fulfilled, refunded = race(fulfil, refund)

    assert isinstance(fulfilled, Order), fulfilled
    assert type(refunded).__name__ == "IllegalTransition", refunded
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.FULFILLED
    assert assert_money_agrees(paid_order, provider) == OrderStatus.FULFILLED
    assert refunded_at_provider(provider) == 0
    assert stock_of(lamp.variant.pk) == 48


def test_refunds_and_fulfilments_released_together_never_both_win(
    provider: SandboxServer, lamp: Product, no_charge_requests: None
) -> None:
    provider.configure(latency_ms=20)
    orders = []
    for _ in range(6):
        order = place()
        assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
        orders.append(order)

    for order in orders:
        race(
            partial(orders_services.refund_order, order_id=order.pk, by=None),
            partial(orders_services.fulfil_order, order_id=order.pk, by=None),
        )

    statuses = [assert_money_agrees(order, provider) for order in orders]
    assert set(statuses) <= {OrderStatus.REFUNDED, OrderStatus.FULFILLED}
    assert refunded_at_provider(provider) == statuses.count(OrderStatus.REFUNDED)
    assert stock_of(lamp.variant.pk) == 50 - 2 * statuses.count(OrderStatus.FULFILLED)
    assert_ledger_matches(lamp.variant.pk)
