"""Carts through the API: lifecycle, who may reach a cart, limits and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.catalog.models import ProductVariant
from apps.checkout.models import Cart, CartLine, CartStatus
from apps.checkout.services import delete_idle_carts
from apps.checkout.tasks import delete_idle_carts_task
from tests.catalog.factories import make_product
from tests.checkout.helpers import BERLIN, add, codes, new_cart
from tests.users.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_cart_lifecycle(api_client):
    make_product(sku="TEE", price="19.90", stock=5)
    make_product(sku="MUG", price="7.50", stock=5)

    created = api_client.post("/api/carts")
    assert created.status_code == 201
    token = created.json()["token"]
    assert len(token) == 32
    assert created.json()["lines"] == []
    assert codes(created.json()["problems"]) == ["cart_empty", "shipping_address_required"]

    body = add(api_client, token, "TEE", 2).json()
    body = add(api_client, token, "mug", 1).json()
    body = add(api_client, token, "TEE", 1).json()
    assert [(line["sku"], line["quantity"]) for line in body["lines"]] == [("TEE", 3), ("MUG", 1)]
    assert body["subtotal"] == "67.20"
    assert body["total"] == "67.20"
    assert body["tax"] == "0.00"
    line = body["lines"][0]
    assert line["unit_price"] == "19.90"
    assert line["price_when_added"] == "19.90"
    assert line["total"] == "59.70"
    assert line["problems"] == []

    changed = api_client.patch(f"/api/carts/{token}/lines/TEE", {"quantity": 1}, format="json")
    assert changed.status_code == 200
    assert changed.json()["subtotal"] == "27.40"

    removed = api_client.delete(f"/api/carts/{token}/lines/MUG")
    assert removed.status_code == 200
    assert [line["sku"] for line in removed.json()["lines"]] == ["TEE"]

    addressed = api_client.patch(f"/api/carts/{token}", {"shipping_address": BERLIN}, format="json")
    assert addressed.status_code == 200, addressed.content
    assert addressed.json()["shipping_address"]["country"] == "DE"
    assert addressed.json()["problems"] == []

    read = api_client.get(f"/api/carts/{token}")
    assert read.status_code == 200
    assert read.json() == addressed.json()


def test_signed_in_customer_has_one_current_cart(client_for):
    user = UserFactory()
    client = client_for(user)
    first = client.post("/api/carts")
    again = client.post("/api/carts")
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json()["token"] == first.json()["token"]
    assert Cart.objects.filter(user=user).count() == 1


def test_someone_elses_cart_is_not_found(client_for, api_client):
    owner, other = UserFactory(), UserFactory()
    token = new_cart(client_for(owner))["token"]
    for client in (client_for(other), api_client):
        for response in (
            client.get(f"/api/carts/{token}"),
            add(client, token, "ANY"),
            client.patch(f"/api/carts/{token}", {"voucher_code": None}, format="json"),
            client.post(f"/api/carts/{token}/checkout", {}, format="json"),
        ):
            assert response.status_code == 404
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "cart_not_found"


def test_anonymous_cart_is_reachable_by_its_token_alone(api_client, client_for):
    make_product(sku="TEE", stock=5)
    token = new_cart(api_client)["token"]
    assert add(client_for(UserFactory()), token, "TEE").status_code == 200
    assert api_client.get(f"/api/carts/{token}").json()["lines"][0]["quantity"] == 1


@pytest.mark.parametrize("token", ["short", "x" * 65, "bad token", "%00abcdefghijklmnopqrstuvwxyz"])
def test_malformed_or_unknown_token_is_not_found(api_client, token):
    response = api_client.get(f"/api/carts/{token}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "TEE", "quantity": 0}, "quantity"),
        ({"sku": "TEE", "quantity": -1}, "quantity"),
        ({"sku": "TEE", "quantity": 101}, "quantity"),
        ({"sku": "TEE", "quantity": 10**30}, "quantity"),
        ({"sku": "TEE", "quantity": "2x"}, "quantity"),
        ({"sku": "TEE", "quantity": 1.5}, "quantity"),
        ({"sku": ["TEE"], "quantity": 1}, "sku"),
        ({"sku": 12, "quantity": 1}, "sku"),
        ({"quantity": 1}, "sku"),
        ({"sku": "TEE"}, "quantity"),
    ],
)
def test_bad_line_input_is_a_400_problem(api_client, body, field):
    make_product(sku="TEE", stock=5)
    token = new_cart(api_client)["token"]
    response = api_client.post(f"/api/carts/{token}/lines", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [error["pointer"] for error in response.json()["errors"]] == [f"#/{field}"]
    assert not CartLine.objects.exists()


def test_unknown_or_inactive_sku_is_refused(api_client):
    make_product(sku="OLD", stock=5, is_active=False)
    token = new_cart(api_client)["token"]
    for sku in ("NOPE", "OLD"):
        response = add(api_client, token, sku)
        assert response.status_code == 400
        assert response.json()["code"] == "product_unavailable"
    assert not CartLine.objects.exists()


def test_quantity_per_line_and_lines_per_cart_are_capped(api_client):
    for sku in ("A1", "B1", "C1"):
        make_product(sku=sku, stock=500)
    token = new_cart(api_client)["token"]
    assert add(api_client, token, "A1", 100).status_code == 200
    over = add(api_client, token, "A1", 1)
    assert over.status_code == 400
    assert over.json()["code"] == "invalid_cart"
    with override_settings(CART_MAX_LINES=2):
        assert add(api_client, token, "B1").status_code == 200
        third = add(api_client, token, "C1")
    assert third.status_code == 400
    assert third.json()["code"] == "invalid_cart"
    assert CartLine.objects.count() == 2


def test_one_currency_per_cart(api_client):
    make_product(sku="EURO", stock=5)
    yen = make_product(sku="YEN", stock=5, price="1200")
    ProductVariant.objects.filter(pk=yen.variant.pk).update(currency="JPY")
    token = new_cart(api_client)["token"]
    assert add(api_client, token, "EURO").status_code == 200
    refused = add(api_client, token, "YEN")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_cart"


def test_unknown_line_and_bad_address_are_problems(api_client):
    token = new_cart(api_client)["token"]
    missing = api_client.patch(f"/api/carts/{token}/lines/NOPE", {"quantity": 1}, format="json")
    assert missing.status_code == 404
    assert missing.json()["code"] == "cart_line_not_found"
    bad = api_client.patch(
        f"/api/carts/{token}",
        {"shipping_address": {**BERLIN, "postal_code": "ABC"}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"
    wrong_type = api_client.patch(f"/api/carts/{token}", {"save_addresses": "maybe"}, format="json")
    assert wrong_type.status_code == 400


def test_idle_cart_is_gone_and_the_task_deletes_it(api_client):
    make_product(sku="TEE", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE")
    fresh = new_cart(api_client)["token"]
    Cart.objects.filter(token=token).update(updated_at=timezone.now() - timedelta(days=31))

    assert api_client.get(f"/api/carts/{token}").status_code == 404
    assert add(api_client, token, "TEE").status_code == 404
    assert delete_idle_carts_task() == 1
    assert delete_idle_carts() == 0
    assert not Cart.objects.filter(token=token).exists()
    assert not CartLine.objects.exists()
    assert api_client.get(f"/api/carts/{fresh}").status_code == 200


def test_checked_out_cart_takes_no_changes(api_client):
    make_product(sku="TEE", stock=5)
    token = new_cart(api_client)["token"]
    Cart.objects.filter(token=token).update(status=CartStatus.CHECKED_OUT)
    response = add(api_client, token, "TEE")
    assert response.status_code == 409
    assert response.json()["code"] == "cart_not_open"


def test_a_customer_whose_cart_went_idle_gets_a_new_one(client_for, api_client):
    make_product(sku="TEE", stock=5)
    user = UserFactory()
    client = client_for(user)
    stale = new_cart(client)["token"]
    Cart.objects.filter(token=stale).update(updated_at=timezone.now() - timedelta(days=31))

    fresh = new_cart(client)["token"]

    assert fresh != stale
    assert list(Cart.objects.filter(user=user).values_list("token", flat=True)) == [fresh]
    # Signing in with an anonymous cart over an idle one adopts the anonymous cart.
    Cart.objects.filter(token=fresh).update(updated_at=timezone.now() - timedelta(days=31))
    anonymous = new_cart(api_client)["token"]
    add(api_client, anonymous, "TEE")
    signed_in = api_client.post(
        "/api/auth/token",
        {"email": user.email, "password": DEFAULT_PASSWORD, "cart_token": anonymous},
        format="json",
    )
    assert signed_in.status_code == 200
    assert list(Cart.objects.filter(user=user).values_list("token", flat=True)) == [anonymous]
