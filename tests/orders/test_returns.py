"""Returns, service level: request, decide, receive (restock or write-off), and the units a
return holds, under the order's row lock and the database's CHECK."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.inventory.models import StockMovement, StockReason, Warehouse
from apps.orders import returns, services
from apps.orders.exceptions import (
    IllegalReturnTransition,
    InvalidReturn,
    OrderNotReturnable,
    ReturnQuantityExceeded,
)
from apps.orders.models import (
    OrderEvent,
    OrderItem,
    OrderStatus,
    Return,
    ReturnDisposition,
    ReturnStatus,
)
from apps.orders.returns import LineReceipt, ReturnLineRequest
from ecommerce.api.permissions import Role
from ecommerce.invariants import CheckContext, run_checks
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.orders.factories import draft_line, order_draft
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def returns_check() -> Any:
    """The registered check alone, as `check_invariants --check orders.returns_add_up` runs it."""
    context = CheckContext(now=timezone.now(), since=None, grace=timedelta(0))
    (result,) = run_checks(context, only=["orders.returns_add_up"])
    return result


def fulfilled_order(user, lines, *, status=OrderStatus.FULFILLED):
    """An order of `lines` ((product, quantity, net, tax)) taken to `status`."""
    draft = order_draft([draft_line(p.variant, q, net=net, tax=tax) for p, q, net, tax in lines])
    order, _ = services.create_order(draft=draft, user=user)
    if status in (OrderStatus.PAID, OrderStatus.FULFILLED):
        services.mark_paid(order_id=order.pk, charge_id="ch_test")
    if status == OrderStatus.FULFILLED:
        services.fulfil_order(order_id=order.pk, by=None)
    order.refresh_from_db()
    return order


@pytest.fixture
def buyer():
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def staff():
    return UserFactory(roles=[Role.SUPPORT], is_staff=True)


@pytest.fixture
def goods():
    tee = make_product(sku="TEE", stock=10, price="20.00")
    mug = make_product(sku="MUG", stock=10, price="10.00")
    return tee, mug


@pytest.fixture
def order(buyer, goods):
    tee, mug = goods
    # 3 tees at 20 less 6 discount = 54 gross (45.38 + 8.62); 2 mugs 20.00 untaxed
    return fulfilled_order(buyer, [(tee, 3, "45.38", "8.62"), (mug, 2, "20.00", "0")])


def topics(order_return: Return) -> list[str]:
    return list(
        OutboxMessage.objects.filter(payload__return_id=order_return.pk)
        .order_by("pk")
        .values_list("topic", flat=True)
        .distinct()
    )


def returned(order, sku: str) -> int:
    return OrderItem.objects.get(order=order, sku=sku).quantity_returned


def test_happy_path_with_restock_puts_the_units_into_the_chosen_warehouse(
    order, buyer, staff, goods
):
    tee, _mug = goods
    north = Warehouse.objects.create(name="North", slug="north", priority=5)

    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="Too small", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=staff)
    received = returns.receive_return(
        return_id=opened.pk, receipts=[LineReceipt("TEE", warehouse="north")], by=staff
    )

    assert received.status == ReturnStatus.RECEIVED
    assert received.received_by == staff
    line = received.lines.get()
    assert (line.disposition, line.warehouse, line.quantity) == (
        ReturnDisposition.RESTOCK,
        north,
        2,
    )
    movement = StockMovement.objects.get(reason=StockReason.RETURN)
    assert (movement.warehouse, movement.variant_id, movement.delta, movement.balance) == (
        north,
        tee.variant.pk,
        2,
        2,
    )
    assert movement.reference == f"return:{opened.public_id}"
    assert movement.actor == staff
    assert stock_of(tee.variant.pk, north.pk) == 2
    assert stock_of(tee.variant.pk) == 7 + 2
    assert_ledger_matches(tee.variant.pk)
    assert returned(order, "TEE") == 2
    history = OrderEvent.objects.filter(order_return=opened).order_by("pk")
    assert [(e.from_status, e.to_status) for e in history] == [("fulfilled", "fulfilled")] * 3
    assert [e.reason.split(":")[0] for e in history] == [
        f"return {opened.public_id} requested (2 unit(s))",
        f"return {opened.public_id} approved",
        f"return {opened.public_id} received",
    ]
    assert topics(opened) == [
        "order.return_requested",
        "order.return_approved",
        "order.return_received",
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert returns_check().ok


def test_write_off_moves_no_stock_and_records_the_reason(order, buyer, staff, goods):
    _tee, mug = goods
    before = StockMovement.objects.count()
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("MUG", 1)], reason="Broken", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=staff)

    returns.receive_return(
        return_id=opened.pk,
        receipts=[LineReceipt("MUG", write_off_reason="Shattered in transit")],
        by=staff,
    )

    line = opened.lines.get()
    assert (line.disposition, line.warehouse, line.write_off_reason) == (
        ReturnDisposition.WRITE_OFF,
        None,
        "Shattered in transit",
    )
    assert StockMovement.objects.count() == before
    assert stock_of(mug.variant.pk) == 8
    last = OrderEvent.objects.filter(order_return=opened).last()
    assert "1 x MUG written off (Shattered in transit)" in last.reason
    assert returns_check().ok


def test_the_check_finds_a_count_or_a_restock_that_does_not_add_up(order, buyer, staff, goods):
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="x", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=staff)
    returns.receive_return(return_id=opened.pk, receipts=[LineReceipt("TEE", "main")], by=staff)
    assert returns_check().ok

    # a line that says 1 unit came back while 2 were restocked
    OrderItem.objects.filter(order=order, sku="TEE").update(quantity_returned=1)
    opened.lines.update(quantity=1)

    result = returns_check()
    assert not result.ok
    assert (result.status, result.broken) == ("FAIL", 1)
    assert result.examples[0].startswith(f"return:{opened.public_id}: restocked per variant")


def test_a_mixed_receipt_restocks_one_line_and_writes_off_the_other(order, buyer, staff, goods):
    tee, mug = goods
    opened = returns.request_return(
        order_id=order.pk,
        lines=[ReturnLineRequest("TEE", 1), ReturnLineRequest("MUG", 2)],
        reason="Changed my mind",
        by=buyer,
    )
    returns.approve_return(return_id=opened.pk, by=staff)
    main = Warehouse.objects.get(slug="main")

    returns.receive_return(
        return_id=opened.pk,
        receipts=[LineReceipt("MUG", write_off_reason="Chipped"), LineReceipt("TEE", "main")],
        by=staff,
    )

    assert stock_of(tee.variant.pk, main.pk) == 8
    assert stock_of(mug.variant.pk, main.pk) == 8
    assert returns.default_refund_amount(opened) == Decimal("18.00") + Decimal("20.00")


def test_default_refund_is_the_units_share_of_the_line_total(order, buyer):
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="x", by=buyer
    )
    # 54.00 for 3 tees: 36.00 for 2
    assert returns.default_refund_amount(opened) == Decimal("36.00")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "at least one line"),
        ([ReturnLineRequest("TEE", 0)], "at least 1 unit"),
        ([ReturnLineRequest("TEE", -1)], "at least 1 unit"),
        ([ReturnLineRequest("TEE", 1), ReturnLineRequest("TEE", 1)], "listed twice"),
        ([ReturnLineRequest("NOPE", 1)], "has no item NOPE"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_held(order, buyer, lines, message):
    with pytest.raises(InvalidReturn, match=message):
        returns.request_return(order_id=order.pk, lines=lines, reason="x", by=buyer)

    assert not Return.objects.exists()
    assert returned(order, "TEE") == 0


def test_more_than_bought_is_refused(order, buyer):
    with pytest.raises(ReturnQuantityExceeded) as refused:
        returns.request_return(
            order_id=order.pk, lines=[ReturnLineRequest("TEE", 4)], reason="x", by=buyer
        )

    assert refused.value.extra["lines"] == {"TEE": {"requested": 4, "returnable": 3}}
    assert not Return.objects.exists()


def test_units_held_by_another_return_are_not_returnable_until_it_is_rejected(order, buyer, staff):
    first = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="x", by=buyer
    )
    with pytest.raises(ReturnQuantityExceeded):
        returns.request_return(
            order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="y", by=buyer
        )
    assert returned(order, "TEE") == 2

    returns.reject_return(return_id=first.pk, by=staff, note="Worn")

    assert returned(order, "TEE") == 0
    second = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 3)], reason="y", by=buyer
    )
    assert second.status == ReturnStatus.REQUESTED
    assert topics(first) == ["order.return_requested", "order.return_rejected"]
    assert returns_check().ok


def test_the_database_refuses_a_count_above_what_was_bought(order):
    item = OrderItem.objects.get(order=order, sku="TEE")

    with pytest.raises(IntegrityError), transaction.atomic():
        OrderItem.objects.filter(pk=item.pk).update(quantity_returned=4)


@pytest.mark.parametrize(
    "status", [OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.CANCELLED]
)
def test_only_fulfilled_orders_take_returns(buyer, goods, status):
    tee, _mug = goods
    order = fulfilled_order(buyer, [(tee, 1, "20.00", "0")], status=status)
    if status == OrderStatus.CANCELLED:
        services.cancel_order(order_id=order.pk, by=buyer)

    with pytest.raises(OrderNotReturnable):
        returns.request_return(
            order_id=order.pk, lines=[ReturnLineRequest("TEE", 1)], reason="x", by=buyer
        )


def test_wrong_state_transitions_are_refused_and_change_nothing(order, buyer, staff):
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 1)], reason="x", by=buyer
    )
    with pytest.raises(IllegalReturnTransition):  # not approved yet
        returns.receive_return(return_id=opened.pk, receipts=[LineReceipt("TEE", "main")], by=staff)
    with pytest.raises(IllegalReturnTransition):
        returns.mark_return_refunded(return_id=opened.pk, amount=Decimal("1.00"))
    returns.reject_return(return_id=opened.pk, by=staff, note="No")
    for step in (
        lambda: returns.approve_return(return_id=opened.pk, by=staff),
        lambda: returns.reject_return(return_id=opened.pk, by=staff, note="again"),
    ):
        with pytest.raises(IllegalReturnTransition):
            step()

    opened.refresh_from_db()
    assert opened.status == ReturnStatus.REJECTED
    assert returned(order, "TEE") == 0
    assert OrderEvent.objects.filter(order_return=opened).count() == 2


@pytest.mark.parametrize(
    ("receipts", "error", "message"),
    [
        ([], InvalidReturn, "nothing given for TEE"),
        ([LineReceipt("TEE")], InvalidReturn, "either a warehouse"),
        ([LineReceipt("TEE", "main", "and a reason")], InvalidReturn, "either a warehouse"),
        ([LineReceipt("TEE", "main"), LineReceipt("TEE", "main")], InvalidReturn, "twice"),
        ([LineReceipt("TEE", "main"), LineReceipt("MUG", "main")], InvalidReturn, "no item MUG"),
        ([LineReceipt("TEE", "nowhere")], Exception, "No active warehouse nowhere"),
    ],
)
def test_bad_receipts_are_refused_and_move_nothing(order, buyer, staff, receipts, error, message):
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", 1)], reason="x", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=staff)
    before = StockMovement.objects.count()

    with pytest.raises(error, match=message):
        returns.receive_return(return_id=opened.pk, receipts=receipts, by=staff)

    opened.refresh_from_db()
    assert opened.status == ReturnStatus.APPROVED
    assert StockMovement.objects.count() == before


def test_refunded_records_the_amount_once(order, buyer, staff):
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("MUG", 1)], reason="x", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=staff)
    returns.receive_return(return_id=opened.pk, receipts=[LineReceipt("MUG", "main")], by=staff)

    returns.mark_return_refunded(return_id=opened.pk, amount=Decimal("10.00"), by=staff)
    again = returns.mark_return_refunded(return_id=opened.pk, amount=Decimal("10.00"), by=staff)

    assert (again.status, again.refunded_amount) == (ReturnStatus.REFUNDED, Decimal("10.00"))
    assert topics(opened)[-1] == "order.return_refunded"
    assert OrderEvent.objects.filter(order_return=opened).count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_for_the_same_units_hold_them_once(buyer, goods):
    tee, _mug = goods
    order = fulfilled_order(buyer, [(tee, 3, "60.00", "0")])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def ask() -> None:
        try:
            barrier.wait(timeout=10)
            returns.request_return(
                order_id=order.pk, lines=[ReturnLineRequest("TEE", 2)], reason="x", by=buyer
            )
            outcomes.append("opened")
        except ReturnQuantityExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["opened", "refused"]
    assert Return.objects.filter(order=order).count() == 1
    assert returned(order, "TEE") == 2
