"""Placing orders through the API: pricing from the catalog, stock, idempotency keys."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from apps.inventory import services as inventory_services
from apps.inventory.models import StockMovement
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments.models import Payment
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.orders.factories import untaxed_line
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "tok_success"


@pytest.fixture
def buyer():
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def buyer_client(client_for, buyer):
    return client_for(buyer)


def order_body(*lines: tuple[str | int, int], **extra):
    return {"items": [{"id": p, "quantity": q} for p, q in lines], "payment_token": TOKEN, **extra}


def test_an_order_is_priced_from_the_catalog_and_reserves_stock(buyer, buyer_client):
    mug = make_product(sku="mug", price="4.50", stock=10)
    tea = make_product(sku="tea", price="3.25", stock=5)

    response = buyer_client.post(
        "/api/orders",
        {**order_body(("mug", 2), ("TEA", 1), ("mug", 1)), "total": "0.01", "price": "0"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get(public_id=body["id"])
    assert response["Location"] == f"/api/orders/{order.public_id}/"
    assert body["status"] == "pending_payment"
    assert body["user_id"] == buyer.pk
    assert body["currency"] == "EUR"
    assert body["subtotal"] == body["total"] == "16.75"
    assert body["items"] == [
        {
            "sku": "mug",
            "name": "Product mug",
            "variant": "",
            "unit_price": "4.50",
            "quantity": 3,
            "line_total": "13.50",
            **untaxed_line("13.50"),
        },
        {
            "sku": "tea",
            "name": "Product tea",
            "variant": "",
            "unit_price": "3.25",
            "quantity": 1,
            "line_total": "3.25",
            **untaxed_line("3.25"),
        },
    ]
    assert stock_of(mug.variant.pk) == 7
    assert stock_of(tea.variant.pk) == 4
    assert_ledger_matches(mug.variant.pk, tea.variant.pk)
    assert list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status")) == [
        ("", "pending_payment")
    ]
    # Orders keeps what payments needs and tells it; the payment is opened by its handler.
    assert order.payment_token == TOKEN
    assert TOKEN not in response.content.decode()
    detail = buyer_client.get(f"/api/orders/{order.public_id}")
    assert detail.status_code == 200
    assert TOKEN not in detail.content.decode()
    assert not Payment.objects.filter(order=order).exists()
    assert OutboxMessage.objects.filter(
        topic="order.placed", payload={"order_id": order.pk}
    ).exists()


def test_the_order_placed_handler_opens_the_payment_from_the_order_and_charges_it(
    buyer_client, django_capture_on_commit_callbacks
):
    make_product(sku="mug", price="4.50", stock=10)

    with django_capture_on_commit_callbacks(execute=True):
        response = buyer_client.post("/api/orders", order_body(("mug", 3)), format="json")

    order = Order.objects.get(public_id=response.json()["id"])
    payment = Payment.objects.get(order=order)
    assert (payment.amount, payment.currency, payment.token) == (Decimal("13.50"), "EUR", TOKEN)
    assert payment.idempotency_key == f"order-{order.public_id}"
    assert (payment.status, payment.attempts) == ("succeeded", 1)
    assert order.status == OrderStatus.PAID


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", ""])
def test_the_spec_curl_shape_works(buyer, content_type):
    """curl -d labels JSON as a form; other clients send no Content-Type at all."""
    make_product(sku="prod1", stock=3)
    body = (
        f'{{"user_id":"{buyer.pk}","items":[{{"id":"prod1","quantity":2}}],'
        f'"payment_token":"{TOKEN}"}}'
    )
    token = RefreshToken.for_user(buyer).access_token

    response = Client().post(
        "/api/orders", data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 201, response.content
    assert response.json()["items"][0]["quantity"] == 2


def test_a_numeric_product_id_is_accepted_and_merged_with_its_sku(buyer_client):
    product = make_product(sku="pen", price="1.00", stock=9)

    response = buyer_client.post(
        "/api/orders", order_body((product.pk, 2), ("pen", 3)), format="json"
    )

    assert response.status_code == 201
    assert response.json()["items"] == [
        {
            "sku": "pen",
            "name": "Product pen",
            "variant": "",
            "unit_price": "1.00",
            "quantity": 5,
            "line_total": "5.00",
            **untaxed_line("5.00"),
        }
    ]


def test_anonymous_orders_are_refused_with_401(api_client):
    make_product(sku="prod1", stock=3)
    response = api_client.post("/api/orders", order_body(("prod1", 1)), format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert Order.objects.count() == 0


def test_insufficient_stock_is_409_naming_each_short_sku(buyer_client):
    a = make_product(sku="aa", stock=1)
    b = make_product(sku="bb", stock=5)
    c = make_product(sku="cc", stock=0)

    response = buyer_client.post(
        "/api/orders", order_body(("aa", 2), ("bb", 1), ("cc", 1)), format="json"
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "out_of_stock"
    assert body["shortfalls"] == [
        {"sku": "aa", "requested": 2, "available": 1},
        {"sku": "cc", "requested": 1, "available": 0},
    ]
    assert [stock_of(p.variant.pk) for p in (a, b, c)] == [1, 5, 0]
    assert Order.objects.count() == 0
    assert Payment.objects.count() == 0
    assert OutboxMessage.objects.count() == 0
    assert StockMovement.objects.filter(reason="order").count() == 0


@pytest.mark.parametrize("lookup", ["ghost", "999999"])
def test_unknown_products_are_400_naming_them(buyer_client, lookup):
    make_product(sku="real", stock=5)
    response = buyer_client.post("/api/orders", order_body(("real", 1), (lookup, 1)), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "product_unavailable"
    assert response.json()["products"] == [lookup]
    assert Order.objects.count() == 0


def test_inactive_products_cannot_be_ordered(buyer_client):
    make_product(sku="old", stock=5, is_active=False)
    response = buyer_client.post("/api/orders", order_body(("old", 1)), format="json")
    assert response.status_code == 400
    assert response.json()["products"] == ["old"]


@pytest.mark.parametrize(
    ("items", "pointer"),
    [
        ([], "#/items"),
        ([{"id": "p", "quantity": 0}], "#/items/0/quantity"),
        ([{"id": "p", "quantity": -1}], "#/items/0/quantity"),
        ([{"id": "p", "quantity": 101}], "#/items/0/quantity"),
        ([{"id": "p", "quantity": "two"}], "#/items/0/quantity"),
        ([{"id": "p"}], "#/items/0/quantity"),
        ([{"quantity": 1}], "#/items/0/id"),
        ([{"id": None, "quantity": 1}], "#/items/0/id"),
        ([{"id": ["p"], "quantity": 1}], "#/items/0/id"),
        ("p", "#/items"),
    ],
)
def test_malformed_items_are_400_with_a_pointer(buyer_client, items, pointer):
    make_product(sku="p", stock=500)
    response = buyer_client.post(
        "/api/orders", {"items": items, "payment_token": TOKEN}, format="json"
    )
    assert response.status_code == 400
    assert pointer in [error["pointer"] for error in response.json()["errors"]]
    assert Order.objects.count() == 0


def test_more_than_the_maximum_lines_is_400(buyer_client, settings):
    settings.ORDER_MAX_LINES = 2
    for n in range(3):
        make_product(sku=f"l{n}", stock=1)
    response = buyer_client.post(
        "/api/orders", order_body(("l0", 1), ("l1", 1), ("l2", 1)), format="json"
    )
    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_merged_duplicate_lines_respect_the_maximum_quantity(buyer_client):
    product = make_product(sku="bulk", stock=500)
    response = buyer_client.post(
        "/api/orders", order_body(("bulk", 60), ("bulk", 60)), format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_order"
    assert stock_of(product.variant.pk) == 500


def test_payment_token_is_required_outside_debug(buyer_client):
    make_product(sku="p1", stock=1)
    response = buyer_client.post(
        "/api/orders", {"items": [{"id": "p1", "quantity": 1}]}, format="json"
    )
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["#/payment_token"]


def test_payment_token_defaults_to_the_sandbox_success_token_in_debug(buyer_client, settings):
    settings.DEBUG = True
    make_product(sku="p1", stock=1)
    response = buyer_client.post(
        "/api/orders", {"items": [{"id": "p1", "quantity": 1}]}, format="json"
    )
    assert response.status_code == 201
    assert Order.objects.get().payment_token == "tok_success"


def test_a_customer_may_name_themselves_but_nobody_else(buyer, buyer_client):
    product = make_product(sku="p1", stock=5)
    other = UserFactory()

    own = buyer_client.post(
        "/api/orders", order_body(("p1", 1), user_id=str(buyer.pk)), format="json"
    )
    theirs = buyer_client.post(
        "/api/orders", order_body(("p1", 1), user_id=other.pk), format="json"
    )

    assert own.status_code == 201
    assert theirs.status_code == 403
    assert Order.objects.filter(user=other).count() == 0
    assert stock_of(product.variant.pk) == 4


def test_an_admin_may_order_on_behalf_of_a_user(client_for):
    # Support needs an explicit permission for this: tests/orders/test_place_for_customer.py
    make_product(sku="p1", stock=5)
    staff, customer = UserFactory(roles=[Role.ADMIN]), UserFactory()

    response = client_for(staff).post(
        "/api/orders", order_body(("p1", 1), user_id=customer.pk), format="json"
    )

    assert response.status_code == 201
    order = Order.objects.get()
    assert (order.user, order.placed_by) == (customer, staff)


def test_staff_ordering_for_an_unknown_user_is_400(client_for):
    make_product(sku="p1", stock=5)
    response = client_for(UserFactory(roles=[Role.ADMIN])).post(
        "/api/orders", order_body(("p1", 1), user_id=987654), format="json"
    )
    assert response.status_code == 400
    assert Order.objects.count() == 0


class TestIdempotencyKey:
    def test_same_key_and_body_replays_the_first_response(self, buyer_client):
        product = make_product(sku="p1", stock=5)
        key = str(uuid.uuid4())
        first = buyer_client.post(
            "/api/orders", order_body(("p1", 2)), format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        Order.objects.update(status=OrderStatus.PAID)  # the order moved on meanwhile

        again = buyer_client.post(
            "/api/orders", order_body(("p1", 2)), format="json", HTTP_IDEMPOTENCY_KEY=key
        )

        assert first.status_code == again.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert again.json() == first.json()
        assert Order.objects.count() == 1
        assert stock_of(product.variant.pk) == 3

    def test_key_order_and_whitespace_of_the_body_do_not_matter(self, buyer_client):
        make_product(sku="p1", stock=5)
        key = "k-1"
        a = buyer_client.post(
            "/api/orders",
            data='{"items":[{"id":"p1","quantity":1}],"payment_token":"tok_success"}',
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        b = buyer_client.post(
            "/api/orders",
            data='{ "payment_token": "tok_success", "items": [ {"quantity": 1, "id": "p1"} ] }',
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        assert a.status_code == b.status_code == 201
        assert b["Idempotent-Replayed"] == "true"
        assert Order.objects.count() == 1

    def test_same_key_with_another_body_is_422(self, buyer_client):
        product = make_product(sku="p1", stock=5)
        buyer_client.post(
            "/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        response = buyer_client.post(
            "/api/orders", order_body(("p1", 2)), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert Order.objects.count() == 1
        assert stock_of(product.variant.pk) == 4

    def test_keys_belong_to_one_user(self, client_for):
        make_product(sku="p1", stock=5)
        a, b = client_for(UserFactory()), client_for(UserFactory())
        ra = a.post("/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
        rb = b.post("/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert ra.status_code == rb.status_code == 201
        assert ra.json()["id"] != rb.json()["id"]
        assert "Idempotent-Replayed" not in rb

    def test_a_failed_request_does_not_burn_the_key(self, buyer_client):
        product = make_product(sku="p1", stock=0)
        refused = buyer_client.post(
            "/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        inventory_services.restock(variant_id=product.variant.pk, quantity=1)
        accepted = buyer_client.post(
            "/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        assert refused.status_code == 409
        assert accepted.status_code == 201
        assert "Idempotent-Replayed" not in accepted

    @pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ"])
    def test_a_malformed_key_is_400(self, buyer_client, key):
        make_product(sku="p1", stock=5)
        response = buyer_client.post(
            "/api/orders", order_body(("p1", 1)), format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code == 400
        assert Order.objects.count() == 0
