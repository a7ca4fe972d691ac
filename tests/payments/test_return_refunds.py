"""A received return's refund: served by payments, through the one refund path; its success
marks the return refunded and lowers what the order says was paid, and the money ledger
still adds up. The provider is the sandbox in-process, as in test_refunds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.orders import returns
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderEvent, OrderStatus, Return, ReturnStatus
from apps.orders.returns import LineReceipt, ReturnLineRequest
from apps.payments import services as payments_services
from apps.payments.models import Refund, RefundOrigin, RefundStatus
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.payments.test_money_ledger import ledger_check
from tests.payments.test_refunds import DownGateway, RefusingGateway
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

TOTAL = Decimal("37.50")  # three lamps at 12.50


@pytest.fixture
def buyer() -> Any:
    return UserFactory(email="buyer@example.com", roles=[Role.CUSTOMER])


@pytest.fixture
def received(buyer: Any, django_capture_on_commit_callbacks: Any) -> Return:
    """Two of three lamps of a paid (charged in-process) and fulfilled order, received back."""
    make_product(sku="lamp", stock=10, price="12.50")
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=buyer, lines=[orders_services.OrderLine("lamp", 3)], payment_token="tok_success"
        )
    assert payments_services.charge_payment(order_id=order.pk) == "succeeded"
    orders_services.fulfil_order(order_id=order.pk, by=None)
    opened = returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("lamp", 2)], reason="Too bright", by=buyer
    )
    returns.approve_return(return_id=opened.pk, by=None)
    return returns.receive_return(
        return_id=opened.pk, receipts=[LineReceipt("lamp", "main")], by=None
    )


@pytest.fixture
def support(client_for: Any) -> Any:
    restore_role_groups()
    return client_for(UserFactory(is_staff=True, roles=[Role.SUPPORT]))


def url(order_return: Return) -> str:
    return f"/api/orders/{order_return.order.public_id}/returns/{order_return.public_id}/refund"


def order_of(order_return: Return) -> Order:
    return Order.objects.get(pk=order_return.order_id)


def test_refunding_a_return_pays_back_its_share_and_marks_it_refunded(
    received: Return, support: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = support.post(url(received), {}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == f"/api/orders/{received.order.public_id}/refunds/{body['id']}/"
    assert (body["amount"], body["status"], body["origin"]) == ("25.00", "succeeded", "return")
    refund = Refund.objects.get()
    assert (refund.order_return_id, refund.origin) == (received.pk, RefundOrigin.RETURN)
    received.refresh_from_db()
    assert (received.status, received.refunded_amount) == (ReturnStatus.REFUNDED, Decimal("25"))
    order = order_of(received)
    assert (order.status, order.amount_paid) == (OrderStatus.FULFILLED, Decimal("12.50"))
    assert OrderEvent.objects.filter(order_return=received).last().reason == (
        f"return {received.public_id} refunded: 25.00 EUR"
    )
    assert mail.outbox[-1].subject == f"Return {str(received.public_id)[:8]} refunded"
    assert "We refunded 25.00 EUR for your return" in mail.outbox[-1].body
    assert ledger_check().ok
    again = support.post(url(received), {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_return_transition"
    assert Refund.objects.count() == 1


def test_staff_may_refund_less_never_more_than_the_returns_share(
    received: Return, support: Any
) -> None:
    more = support.post(url(received), {"amount": "25.01"}, format="json")
    assert more.status_code == 400
    assert more.json()["code"] == "invalid_refund_amount"
    assert "at most 25.00 EUR" in more.json()["detail"]
    for bad in ("0", "-1", "1.001"):
        assert support.post(url(received), {"amount": bad}, format="json").status_code == 400
    assert not Refund.objects.exists()

    less = support.post(url(received), {"amount": "20.00", "reason": "scratched"}, format="json")

    assert (less.status_code, less.json()["amount"], less.json()["reason"]) == (
        201,
        "20.00",
        "scratched",
    )
    assert order_of(received).amount_paid == Decimal("17.50")
    received.refresh_from_db()
    assert received.refunded_amount == Decimal("20.00")
    assert ledger_check().ok


def test_only_a_received_return_is_refunded(received: Return, buyer: Any, support: Any) -> None:
    other = returns.request_return(
        order_id=received.order_id, lines=[ReturnLineRequest("lamp", 1)], reason="x", by=buyer
    )

    response = support.post(url(other), {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_return_transition"
    assert not Refund.objects.exists()


def test_customers_may_not_refund_and_strangers_find_nothing(
    received: Return, buyer: Any, client_for: Any
) -> None:
    own = client_for(buyer).post(url(received), {}, format="json")
    stranger = client_for(UserFactory(roles=[Role.CUSTOMER])).post(url(received), {}, format="json")

    assert (own.status_code, own.json()["code"]) == (403, "permission_denied")
    assert (stranger.status_code, stranger.json()["code"]) == (404, "order_not_found")
    assert not Refund.objects.exists()


def test_a_pending_refund_holds_the_return_until_the_sweep_finishes_both(
    received: Return, support: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payments_services, "get_gateway", DownGateway)
    pending = support.post(url(received), {}, format="json")
    assert (pending.status_code, pending.json()["status"]) == (201, "pending")
    twice = support.post(url(received), {}, format="json")
    assert (twice.status_code, twice.json()["code"]) == (409, "return_refund_in_progress")
    received.refresh_from_db()
    assert received.status == ReturnStatus.RECEIVED
    assert ledger_check().ok

    monkeypatch.undo()
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Refund.objects.update(updated_at=long_ago)
    assert payments_services.reconcile_payments()["refunded"] == 1

    received.refresh_from_db()
    assert (received.status, received.refunded_amount) == (ReturnStatus.REFUNDED, Decimal("25"))
    assert order_of(received).amount_paid == Decimal("12.50")
    assert ledger_check().ok


def test_a_refused_refund_leaves_the_return_received_to_be_refunded_again(
    received: Return, support: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payments_services, "get_gateway", RefusingGateway)
    refused = support.post(url(received), {}, format="json")
    assert (refused.status_code, refused.json()["status"]) == (201, "failed")
    received.refresh_from_db()
    assert received.status == ReturnStatus.RECEIVED

    monkeypatch.undo()
    retried = support.post(url(received), {}, format="json")

    assert retried.json()["status"] == "succeeded"
    assert list(Refund.objects.order_by("pk").values_list("status", flat=True)) == [
        RefundStatus.FAILED,
        RefundStatus.SUCCEEDED,
    ]
    received.refresh_from_db()
    assert received.status == ReturnStatus.REFUNDED
    assert ledger_check().ok


def test_the_admin_refund_action_says_what_it_refunded_and_why_not(
    received: Return, buyer: Any, client: Client
) -> None:
    restore_role_groups()
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    not_yet = returns.request_return(
        order_id=received.order_id, lines=[ReturnLineRequest("lamp", 1)], reason="x", by=buyer
    )

    response = client.post(
        "/admin/orders/return/",
        {"action": "refund", "_selected_action": [received.pk, not_yet.pk]},
        follow=True,
    )

    assert [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)] == [
        ("success", f"Return {received.public_id}: refunded 25.00 EUR."),
        (
            "error",
            f"Return {not_yet.public_id}: requested, and a requested return cannot be refunded.",
        ),
    ]
    assert order_of(received).amount_paid == Decimal("12.50")
    assert ledger_check().ok
