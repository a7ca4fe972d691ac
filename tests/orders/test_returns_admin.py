"""Returns in the admin: the order page lists them; the Return page's actions approve, reject
(asking the reason) and receive (asking the warehouse or the write-off reason), each saying
what it did and why it skipped what it skipped; support may, customers' staff rights may not."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from apps.inventory.models import StockMovement, StockReason, Warehouse
from apps.orders import returns
from apps.orders.models import Return, ReturnStatus
from apps.orders.returns import ReturnLineRequest
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.orders.test_returns import fulfilled_order
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

RETURNS = "/admin/orders/return/"


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def buyer():
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def tee():
    return make_product(sku="TEE", stock=5, price="20.00")


@pytest.fixture
def order(buyer, tee):
    return fulfilled_order(buyer, [(tee, 3, "60.00", "0")])


@pytest.fixture
def support(client: Client) -> Client:
    restore_role_groups()
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    return client


def open_return(order, buyer, quantity: int = 1) -> Return:
    return returns.request_return(
        order_id=order.pk, lines=[ReturnLineRequest("TEE", quantity)], reason="Too big", by=buyer
    )


def act(client: Client, action: str, *objects: Return, **form: str) -> Any:
    body = {"action": action, "_selected_action": [r.pk for r in objects], **form}
    return client.post(RETURNS, body, follow=True)


def test_the_order_page_lists_its_returns_and_the_return_page_shows_the_refund_due(
    support, order, buyer
):
    opened = open_return(order, buyer, 2)

    page = support.get(f"/admin/orders/order/{order.pk}/change/")
    detail = support.get(f"{RETURNS}{opened.pk}/change/")

    assert page.status_code == 200
    assert str(opened.public_id) in page.content.decode()
    assert "2 x TEE" in page.content.decode()
    assert "40.00 EUR (the lines&#x27; share; shipping excluded)" in detail.content.decode()


def test_approve_reports_what_it_did_and_why_it_skipped_the_rest(support, order, buyer):
    first, second = open_return(order, buyer), open_return(order, buyer)
    returns.reject_return(return_id=second.pk, by=None, note="No")

    response = act(support, "approve", first, second)

    assert messages_of(response) == [
        ("success", f"Approved 1 return(s): {first.public_id}."),
        (
            "error",
            f"Return {second.public_id}: rejected, and a rejected return cannot be approved.",
        ),
    ]
    first.refresh_from_db()
    assert first.status == ReturnStatus.APPROVED


def test_reject_asks_the_reason_first(support, order, buyer):
    opened = open_return(order, buyer)

    form = act(support, "reject", opened)
    assert form.status_code == 200
    assert b'name="note"' in form.content
    assert Return.objects.get().status == ReturnStatus.REQUESTED

    done = act(support, "reject", opened, apply="1", note="Worn")

    assert messages_of(done) == [("success", f"Rejected 1 return(s): {opened.public_id}.")]
    opened.refresh_from_db()
    assert (opened.status, opened.staff_note) == (ReturnStatus.REJECTED, "Worn")


def test_receive_into_a_chosen_warehouse(support, order, buyer, tee):
    north = Warehouse.objects.create(name="North", slug="north")
    opened = open_return(order, buyer, 2)
    returns.approve_return(return_id=opened.pk, by=None)

    missing = act(support, "receive", opened, apply="1", disposition="restock")
    assert b"Choose the warehouse" in missing.content
    done = act(support, "receive", opened, apply="1", disposition="restock", warehouse=north.pk)

    assert messages_of(done) == [
        ("success", f"Received into North 1 return(s): {opened.public_id}.")
    ]
    assert stock_of(tee.variant.pk, north.pk) == 2
    assert StockMovement.objects.filter(reason=StockReason.RETURN).count() == 1


def test_receive_as_write_off_needs_a_reason_and_moves_no_stock(support, order, buyer):
    opened = open_return(order, buyer)
    returns.approve_return(return_id=opened.pk, by=None)
    before = StockMovement.objects.count()

    missing = act(support, "receive", opened, apply="1", disposition="write_off")
    assert b"Say why the goods are written off" in missing.content
    done = act(
        support, "receive", opened, apply="1", disposition="write_off", write_off_reason="Torn"
    )

    assert messages_of(done) == [
        ("success", f"Received and wrote off (Torn) 1 return(s): {opened.public_id}.")
    ]
    assert StockMovement.objects.count() == before
    assert opened.lines.get().write_off_reason == "Torn"


def test_receiving_a_return_not_approved_says_why(support, order, buyer):
    opened = open_return(order, buyer)

    done = act(support, "receive", opened, apply="1", disposition="write_off", write_off_reason="x")

    assert messages_of(done) == [
        ("warning", "Nothing changed: no selected return could be."),
        (
            "error",
            f"Return {opened.public_id}: requested, and a requested return cannot be received.",
        ),
    ]


def test_staff_without_the_return_rights_see_no_actions(client: Client, order, buyer):
    restore_role_groups()
    viewer = UserFactory(is_staff=True, roles=[Role.CATALOG_MANAGER])
    viewer.user_permissions.add(Permission.objects.get(codename="view_return"))
    client.force_login(viewer)
    opened = open_return(order, buyer)

    listing = client.get(RETURNS)
    response = act(client, "approve", opened)

    assert listing.status_code == 200
    assert b'value="approve"' not in listing.content
    assert Return.objects.get(pk=opened.pk).status == ReturnStatus.REQUESTED
    assert response.status_code == 200
