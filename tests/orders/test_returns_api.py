"""Returns over HTTP: the customer asks and follows, staff decide and receive; each step
emails the customer; bad input is problem+json, another user's order is 404."""

from __future__ import annotations

import pytest
from django.core import mail

from apps.inventory.models import StockMovement, Warehouse
from apps.notifications.models import Notification
from apps.orders.models import OrderEvent, OrderStatus, Return
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.orders.test_returns import fulfilled_order
from tests.users.factories import UserFactory
from tests.users.helpers import assert_problem as assert_plain_problem

pytestmark = pytest.mark.django_db

RETURN_KEYS = {
    "id",
    "order_id",
    "status",
    "reason",
    "staff_note",
    "currency",
    "lines",
    "refund_amount",
    "refunded_amount",
    "created_at",
    "updated_at",
}


@pytest.fixture
def buyer():
    return UserFactory(roles=[Role.CUSTOMER], email="buyer@example.com")


@pytest.fixture
def tee():
    return make_product(sku="TEE", stock=5, price="20.00", name="Tee")


@pytest.fixture
def order(buyer, tee):
    return fulfilled_order(buyer, [(tee, 3, "60.00", "0")])


@pytest.fixture
def customer(client_for, buyer):
    return client_for(buyer)


@pytest.fixture
def support(client_for):
    return client_for(UserFactory(roles=[Role.SUPPORT], is_staff=True))


def assert_problem(response, status: int, code: str) -> dict:
    """problem+json with `code`; a domain problem may carry its data as extension members."""
    if response.json().keys() - {"errors"} <= {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "code",
        "request_id",
    }:
        return assert_plain_problem(response, status, code)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def url(order, *rest: str) -> str:
    return "/".join([f"/api/orders/{order.public_id}/returns", *rest])


def ask(client, order, quantity=2, item="TEE", reason="Too small"):
    return client.post(
        url(order),
        {"lines": [{"item": item, "quantity": quantity}], "reason": reason},
        format="json",
    )


def test_the_whole_return_over_http_emails_each_step(
    customer, support, order, tee, django_capture_on_commit_callbacks
):
    north = Warehouse.objects.create(name="North", slug="north")

    with django_capture_on_commit_callbacks(execute=True):
        created = ask(customer, order)
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == RETURN_KEYS
    assert created["Location"] == f"/api/orders/{order.public_id}/returns/{body['id']}/"
    assert (body["status"], body["refund_amount"], body["refunded_amount"]) == (
        "requested",
        "40.00",
        None,
    )
    assert body["lines"] == [
        {
            "item": "TEE",
            "name": "Tee",
            "variant": "",
            "quantity": 2,
            "refund_amount": "40.00",
            "disposition": "",
            "warehouse": None,
            "write_off_reason": "",
        }
    ]
    detail = url(order, body["id"])
    with django_capture_on_commit_callbacks(execute=True):
        approved = support.post(f"{detail}/approve", {"note": "ok"}, format="json")
    assert approved.json()["status"] == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        received = support.post(
            f"{detail}/receive", {"lines": [{"item": "TEE", "restock_to": "north"}]}, format="json"
        )
    assert received.status_code == 200, received.content
    assert received.json()["lines"][0] | {} == {
        **body["lines"][0],
        "disposition": "restock",
        "warehouse": "north",
    }
    assert stock_of(tee.variant.pk, north.pk) == 2

    listed = customer.get(url(order)).json()
    assert [(r["id"], r["status"]) for r in listed["results"]] == [(body["id"], "received")]
    assert customer.get(detail).json()["status"] == "received"
    history = customer.get(f"/api/orders/{order.public_id}").json()["history"]
    assert [h["reason"].split(":")[0] for h in history[-3:]] == [
        f"return {body['id']} requested (2 unit(s))",
        f"return {body['id']} approved",
        f"return {body['id']} received",
    ]
    assert all(h["from"] == h["to"] == "fulfilled" for h in history[-3:])
    assert [h["return_id"] for h in history] == [None, None, None] + [body["id"]] * 3
    notifications = Notification.objects.filter(subject=f"return:{body['id']}").order_by("pk")
    assert [(n.event, n.channel, n.recipient.email) for n in notifications] == [
        ("return_requested", "email", "buyer@example.com"),
        ("return_approved", "email", "buyer@example.com"),
        ("return_received", "email", "buyer@example.com"),
    ]
    subjects = [m.subject for m in mail.outbox if m.to == ["buyer@example.com"]]
    short = body["id"][:8]
    assert subjects[-3:] == [
        f"Return {short} requested",
        f"Return {short} approved",
        f"Return {short} received",
    ]
    assert "2 x Tee (TEE): back in stock" in mail.outbox[-1].body


def test_rejection_emails_the_reason_and_frees_the_units(
    customer, support, order, django_capture_on_commit_callbacks
):
    created = ask(customer, order, quantity=3).json()

    with django_capture_on_commit_callbacks(execute=True):
        rejected = support.post(
            f"{url(order, created['id'])}/reject", {"note": "Worn"}, format="json"
        )

    assert (rejected.json()["status"], rejected.json()["staff_note"]) == ("rejected", "Worn")
    assert "Reason: Worn" in mail.outbox[-1].body
    assert ask(customer, order, quantity=3).status_code == 201


def test_another_users_order_and_returns_are_404(client_for, order, customer):
    created = ask(customer, order).json()
    stranger = client_for(UserFactory(roles=[Role.CUSTOMER]))

    assert_problem(stranger.get(url(order)), 404, "order_not_found")
    assert_problem(ask(stranger, order), 404, "order_not_found")
    assert_problem(stranger.get(url(order, created["id"])), 404, "order_not_found")
    assert_problem(
        stranger.post(f"{url(order, created['id'])}/approve", {}, format="json"),
        404,
        "order_not_found",
    )
    assert Return.objects.count() == 1


def test_a_customer_cannot_decide_their_own_return(customer, order):
    created = ask(customer, order).json()

    response = customer.post(f"{url(order, created['id'])}/approve", {}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert Return.objects.get().status == "requested"


def test_an_unknown_return_of_a_visible_order_is_404(customer, order):
    response = customer.get(url(order, "5b0e7c2d-8f4a-4d1b-9e3c-2a1b0c9d8e7f"))

    assert_problem(response, 404, "return_not_found")


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        (
            {"lines": [{"item": "NOPE", "quantity": 1}], "reason": "x"},
            400,
            "invalid_return",
            "NOPE",
        ),
        ({"lines": [{"item": "TEE", "quantity": 0}], "reason": "x"}, 400, "validation_error", ""),
        ({"lines": [{"item": "TEE", "quantity": -1}], "reason": "x"}, 400, "validation_error", ""),
        (
            {"lines": [{"item": "TEE", "quantity": 4}], "reason": "x"},
            409,
            "return_quantity_exceeded",
            "3 returnable",
        ),
        (
            {
                "lines": [{"item": "TEE", "quantity": 1}, {"item": "TEE", "quantity": 1}],
                "reason": "x",
            },
            400,
            "validation_error",
            "",
        ),
        ({"lines": [], "reason": "x"}, 400, "validation_error", ""),
        (
            {"lines": [{"item": "TEE", "quantity": 1}], "reason": " "},
            400,
            "validation_error",
            "",
        ),
        ({"lines": [{"item": "TEE", "quantity": "1"}]}, 400, "validation_error", ""),
    ],
)
def test_bad_requests_are_problems_and_open_nothing(customer, order, body, status, code, detail):
    response = customer.post(url(order), body, format="json")

    problem = assert_problem(response, status, code)
    assert detail in problem["detail"]
    assert not Return.objects.exists()


def test_an_order_not_fulfilled_takes_no_return(buyer, customer, tee):
    paid = fulfilled_order(buyer, [(tee, 1, "20.00", "0")], status=OrderStatus.PAID)

    problem = assert_problem(ask(customer, paid, quantity=1), 409, "order_not_returnable")

    assert "only fulfilled orders" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"lines": [{"item": "TEE", "restock_to": "nowhere"}]}, 400, "unknown_warehouse"),
        ({"lines": [{"item": "TEE"}]}, 400, "validation_error"),
        (
            {"lines": [{"item": "TEE", "restock_to": "main", "write_off_reason": "x"}]},
            400,
            "validation_error",
        ),
        ({"lines": [{"item": "MUG", "restock_to": "main"}]}, 400, "invalid_return"),
        ({"lines": []}, 400, "validation_error"),
    ],
)
def test_bad_receipts_are_problems_and_move_nothing(customer, support, order, body, status, code):
    created = ask(customer, order).json()
    support.post(f"{url(order, created['id'])}/approve", {}, format="json")
    before = StockMovement.objects.count()

    response = support.post(f"{url(order, created['id'])}/receive", body, format="json")

    assert_problem(response, status, code)
    assert StockMovement.objects.count() == before
    assert Return.objects.get().status == "approved"


def test_a_wrong_step_is_409_and_changes_nothing(customer, support, order):
    created = ask(customer, order).json()
    detail = url(order, created["id"])

    receive = support.post(
        f"{detail}/receive", {"lines": [{"item": "TEE", "restock_to": "main"}]}, format="json"
    )
    support.post(f"{detail}/reject", {"note": "No"}, format="json")
    approve = support.post(f"{detail}/approve", {}, format="json")

    assert (
        "cannot become received"
        in assert_problem(receive, 409, "illegal_return_transition")["detail"]
    )
    assert_problem(approve, 409, "illegal_return_transition")
    assert OrderEvent.objects.filter(order_return__public_id=created["id"]).count() == 2


def test_malformed_ids_are_404(customer, order):
    assert customer.get("/api/orders/not-a-uuid/returns").status_code == 404
    assert customer.get(f"/api/orders/{order.public_id}/returns/42").status_code == 404
