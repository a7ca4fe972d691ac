"""The price breakdown where people read an order: the admin page and the order emails."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.catalog.models import Product
from apps.notifications.channels.email import render_email
from apps.notifications.models import NotificationEvent
from apps.notifications.services import notify_order_event
from apps.orders import services
from apps.orders.models import Order
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.orders.factories import draft_line, full_draft, order_draft
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tee() -> Product:
    return make_product(sku="tee", stock=30, price="19.90", name="Organic tee")


@pytest.fixture
def mug() -> Product:
    return make_product(sku="mug", stock=20, price="10.00", name="Mug & Co")


@pytest.fixture
def buyer() -> Any:
    return UserFactory(email="ada@example.com", name="Ada")


@pytest.fixture
def gross_order(tee: Product, mug: Product, buyer: Any) -> Order:
    order, _ = services.create_order(draft=full_draft(tee, mug), user=buyer)
    return order


@pytest.fixture
def net_order(mug: Product, buyer: Any) -> Order:
    """Net prices: one mug at 10.00 plus 19% VAT."""
    draft = order_draft(
        [draft_line(mug.variant, 1, tax_rate="19", tax="1.90", net="10.00")],
        prices_include_tax=False,
        tax_breakdown=[{"rate": Decimal("19"), "net": Decimal("10.00"), "tax": Decimal("1.90")}],
    )
    order, _ = services.create_order(draft=draft, user=buyer)
    return order


def email_for(order: Order, event: str = NotificationEvent.ORDER_PLACED) -> Any:
    (notification,) = notify_order_event(event=event, order_id=order.pk)
    return render_email(notification)


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes "or null"."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


# --- API ------------------------------------------------------------------------------------


def test_orders_with_and_without_a_breakdown_match_the_documented_schema(
    gross_order, mug, buyer, client_for
):
    """A full order, and one from before the breakdown (no addresses, no hold)."""
    old, _ = services.place_order(
        user=buyer, lines=[services.OrderLine("mug", 1)], payment_token="tok_success"
    )
    Order.objects.filter(pk=old.pk).update(expires_at=None)
    document = json.loads(
        APIClient().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    components = as_json_schema(document["components"])
    detail = {"$ref": "#/components/schemas/OrderDetailOutput", "components": components}
    listed = {"$ref": "#/components/schemas/OrderOutput", "components": components}
    client = client_for(buyer)

    for order in (gross_order, old):
        jsonschema.validate(client.get(f"/api/orders/{order.public_id}").json(), detail)
    page = client.get("/api/orders").json()["results"]
    assert len(page) == 2
    for body in page:
        jsonschema.validate(body, listed)
    assert {body["expires_at"] is None for body in page} == {True, False}


# --- Emails ---------------------------------------------------------------------------------


def test_an_order_email_shows_discounts_shipping_vat_included_and_the_address(gross_order):
    rendered = email_for(gross_order)

    text = rendered.text
    assert "3 x Organic tee (tee) at 19.90 EUR, less 5.97 EUR = 53.73 EUR" in text
    assert "2 x Mug & Co (mug) at 10.00 EUR, less 2.00 EUR (Mug week) = 18.00 EUR" in text
    assert (
        "Subtotal: 79.70 EUR\n"
        "Shipping (DHL Paket): 4.90 EUR\n"
        "Discount (voucher WELCOME10): -7.97 EUR\n"
        "Total: 76.63 EUR\n"
        "incl. 19% VAT: 12.23 EUR\n"
    ) in text
    assert "VAT 19%" not in text
    assert "Shipping to:\nAda Lovelace\nUnter den Linden 1\n10117 Berlin\nDE\n" in text, text
    html = rendered.html
    assert "<td>Mug &amp; Co</td>" in html
    assert "less 2.00 EUR (Mug week)" in html
    assert "Shipping (DHL Paket)" in html
    assert "Discount (voucher WELCOME10)" in html
    assert "incl. 19% VAT" in html
    assert "Unter den Linden 1<br>" in html


def test_a_net_priced_order_email_adds_the_vat_before_the_total(net_order):
    rendered = email_for(net_order, NotificationEvent.ORDER_PAID)

    text = rendered.text
    assert "1 x Mug & Co (mug) at 10.00 EUR = 10.00 EUR" in text
    assert "Subtotal: 10.00 EUR\nVAT 19%: 1.90 EUR\nTotal: 11.90 EUR\n" in text
    assert "incl." not in text
    assert "Shipping" not in text  # neither a method nor an address
    assert "Discount" not in text
    assert "VAT 19%" in rendered.html


def test_an_order_placed_as_entered_reads_as_before(mug, buyer):
    order, _ = services.place_order(
        user=buyer, lines=[services.OrderLine("mug", 3)], payment_token="tok_success"
    )

    text = email_for(order).text

    assert (
        "3 x Mug & Co (mug) at 10.00 EUR = 30.00 EUR\n\nSubtotal: 30.00 EUR\nTotal: 30.00 EUR"
        in (text)
    )
    assert "VAT" not in text


# --- Admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(
        UserFactory(email="boss@example.com", is_staff=True, is_superuser=True, roles=[Role.ADMIN])
    )
    return client


def test_the_admin_order_page_shows_the_price_breakdown(admin, gross_order):
    response = admin.get(f"/admin/orders/order/{gross_order.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Price breakdown" in html
    for shown in (
        "ada@example.com",
        "Tax included (gross)",
        "79.70",
        "DHL Paket: 4.90 EUR (tax 0.78)",
        "7.97",
        "WELCOME10",
        "<td>19%</td><td>64.40</td><td>12.23</td>",
        "76.63",
        "Ada Lovelace<br>Unter den Linden 1<br>10117 Berlin<br>DE",
        "Analytical Engines GmbH",
        "Mug week",
        "Hold expires",
    ):
        assert shown in html, shown
    items = response.context["inline_admin_formsets"][0]
    assert [
        (f.instance.sku, f.instance.discount, f.instance.tax_rate, f.instance.tax)
        for f in items.formset.forms
    ] == [
        ("tee", Decimal("5.97"), Decimal("19.00"), Decimal("8.58")),
        ("mug", Decimal("2.00"), Decimal("19.00"), Decimal("2.87")),
    ]
    form = response.context["adminform"].form
    assert not {"total", "tax_total", "shipping_address", "expires_at"} & set(form.fields)


def test_the_admin_page_of_an_order_from_before_the_breakdown_says_so(admin, mug, buyer):
    order, _ = services.place_order(
        user=buyer, lines=[services.OrderLine("mug", 1)], payment_token="tok_success"
    )
    Order.objects.filter(pk=order.pk).update(expires_at=None)

    html = admin.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    assert "(placement + payment timeout)" in html
    assert "Tax included (gross)" in html


def test_a_yen_order_shows_whole_yen_everywhere(settings: Any, buyer: Any) -> None:
    settings.STORE_CURRENCY = "JPY"
    bowl = make_product(sku="bowl", stock=5, price="1200", name="Bowl")
    assert bowl.variant.currency == "JPY"

    order, _ = services.place_order(
        user=buyer, lines=[services.OrderLine("bowl", 2)], payment_token="tok_success"
    )

    client = APIClient()
    client.force_authenticate(buyer)
    body = client.get(f"/api/orders/{order.public_id}").json()
    assert (body["currency"], body["subtotal"], body["total"]) == ("JPY", "2400", "2400")
    assert (body["items"][0]["unit_price"], body["items"][0]["line_total"]) == ("1200", "2400")
    assert body["shipping"]["price"] == body["tax_total"] == "0"
