"""Priced carts, vouchers, shipping, the sign-in merge, and checkout into an order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import Product, ProductVariant
from apps.checkout.models import Cart, CartLine, CartStatus
from apps.checkout.tasks import RELEASE_VOUCHER_USE_TASK, release_voucher_use_task
from apps.inventory.models import StockMovement
from apps.orders import services as orders_services
from apps.orders.models import Order
from apps.pricing.models import Voucher, VoucherUse
from apps.users.models import Address
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.checkout.helpers import BERLIN, add, codes, new_cart
from tests.pricing.factories import make_voucher, set_rate
from tests.shipping.factories import make_method, make_zone
from tests.users.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "tok_success"


@pytest.fixture
def buyer():
    return UserFactory()


@pytest.fixture
def dhl():
    return make_method(make_zone("germany", ["DE"]), "DHL", price="4.90")


def ready_cart(client, *, sku: str = "TEE", quantity: int = 2, method=None) -> str:
    """A signed-in customer's cart with one line, a Berlin address and (given) a method."""
    token = new_cart(client)["token"]
    assert add(client, token, sku, quantity).status_code == 200
    body = {"shipping_address": BERLIN}
    if method is not None:
        body["shipping_method"] = method.pk
    response = client.patch(f"/api/carts/{token}", body, format="json")
    assert response.status_code == 200, response.content
    return token


# --- The priced cart -------------------------------------------------------------------------


def test_price_change_deactivation_and_short_stock_are_line_problems(api_client):
    tee = make_product(sku="TEE", price="19.90", stock=5)
    mug = make_product(sku="MUG", price="7.50", stock=1)
    old = make_product(sku="OLD", price="3.00", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE", 1)
    add(api_client, token, "MUG", 3)
    add(api_client, token, "OLD", 1)
    ProductVariant.objects.filter(pk=tee.variant.pk).update(price=Decimal("21.90"))
    Product.objects.filter(pk=old.pk).update(is_active=False)

    body = api_client.get(f"/api/carts/{token}").json()

    lines = {line["sku"]: line for line in body["lines"]}
    assert lines["TEE"]["problems"] == [
        {"code": "price_changed", "sku": "TEE", "old": "19.90", "new": "21.90"}
    ]
    assert lines["TEE"]["total"] == "21.90"
    assert lines["MUG"]["problems"] == [
        {"code": "insufficient_stock", "sku": "MUG", "requested": 3, "available": 1}
    ]
    assert lines["OLD"]["problems"] == [{"code": "variant_unavailable", "sku": "OLD"}]
    assert lines["OLD"]["total"] is None
    assert body["subtotal"] == "44.40"  # 21.90 + 3 * 7.50; the unavailable line is left out
    assert codes(body["problems"]) == [
        "insufficient_stock",
        "price_changed",
        "shipping_address_required",
        "variant_unavailable",
    ]
    assert mug.variant.pk  # stock untouched by reads
    assert stock_of(mug.variant.pk) == 1

    # Changing the line's quantity accepts the new price.
    accepted = api_client.patch(f"/api/carts/{token}/lines/TEE", {"quantity": 1}, format="json")
    assert accepted.json()["lines"][0]["problems"] == []
    assert accepted.json()["lines"][0]["price_when_added"] == "21.90"


def test_shipping_methods_follow_the_address(api_client, dhl):
    make_method(make_zone("france", ["FR"]), "Colissimo", price="6.00")
    make_product(sku="TEE", price="19.90", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE", 1)
    assert api_client.get(f"/api/carts/{token}/shipping-methods").json() == []

    body = api_client.patch(
        f"/api/carts/{token}", {"shipping_address": BERLIN}, format="json"
    ).json()
    assert [m["name"] for m in body["shipping_methods"]] == ["DHL"]
    assert codes(body["problems"]) == ["shipping_method_required"]
    listed = api_client.get(f"/api/carts/{token}/shipping-methods").json()
    assert listed == [
        {"id": dhl.pk, "name": "DHL", "zone": "germany", "price": "4.90", "free": False}
    ]

    other = api_client.patch(f"/api/carts/{token}", {"shipping_method": dhl.pk + 1}, format="json")
    assert other.status_code == 400
    assert other.json()["code"] == "shipping_method_unavailable"

    chosen = api_client.patch(f"/api/carts/{token}", {"shipping_method": dhl.pk}, format="json")
    assert chosen.status_code == 200
    body = chosen.json()
    assert body["problems"] == []
    assert body["shipping"]["name"] == "DHL"
    assert body["shipping"]["price"] == "4.90"
    assert body["total"] == "24.80"

    dhl.is_active = False
    dhl.save()
    later = api_client.get(f"/api/carts/{token}").json()
    assert codes(later["problems"]) == ["shipping_method_unavailable"]
    assert later["total"] == "19.90"


def test_tax_of_the_destination_is_on_the_cart(api_client):
    set_rate("DE", "standard", "19")
    make_product(sku="TEE", price="119.00", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE", 1)
    body = api_client.patch(
        f"/api/carts/{token}", {"shipping_address": BERLIN}, format="json"
    ).json()
    assert body["total"] == "119.00"
    assert body["tax"] == "19.00"
    assert body["total_net"] == "100.00"
    assert body["tax_breakdown"] == [{"rate": "19", "net": "100.00", "tax": "19.00"}]
    assert body["lines"][0]["tax_rate"] == "19"


@pytest.mark.parametrize(
    ("voucher", "status", "code"),
    [
        ({"code": "OTHER"}, 400, "voucher_not_found"),
        ({"is_active": False}, 409, "voucher_not_active"),
        ({"usage_limit": 1, "used_count": 1}, 409, "voucher_exhausted"),
    ],
)
def test_unusable_voucher_is_refused_when_applied(api_client, voucher, status, code):
    make_voucher(**{"code": "SAVE10", **voucher})
    token = new_cart(api_client)["token"]
    response = api_client.patch(f"/api/carts/{token}", {"voucher_code": "save10"}, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert Cart.objects.get(token=token).voucher_code == ""


def test_voucher_that_lapses_later_is_a_problem_on_the_cart(api_client):
    voucher = make_voucher("SAVE10", value="10")
    make_product(sku="TEE", price="20.00", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE", 1)
    body = api_client.patch(f"/api/carts/{token}", {"voucher_code": "save10"}, format="json").json()
    assert body["voucher_code"] == "SAVE10"
    assert body["voucher_applied"] is True
    assert body["discount"] == "2.00"
    assert body["total"] == "18.00"

    Voucher.objects.filter(pk=voucher.pk).update(is_active=False)
    body = api_client.get(f"/api/carts/{token}").json()
    assert body["voucher_applied"] is False
    assert body["total"] == "20.00"
    assert "voucher_not_active" in codes(body["problems"])

    cleared = api_client.patch(f"/api/carts/{token}", {"voucher_code": None}, format="json").json()
    assert "voucher_not_active" not in codes(cleared["problems"])


def test_reading_a_cart_takes_as_many_queries_for_twelve_lines_as_for_two(api_client, dhl):
    make_voucher("SAVE10", value="10")
    token = new_cart(api_client)["token"]
    api_client.patch(
        f"/api/carts/{token}",
        {"shipping_address": BERLIN, "voucher_code": "SAVE10"},
        format="json",
    )

    def queries_for_read() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api_client.get(f"/api/carts/{token}").status_code == 200
        return len(queries)

    for i in range(2):
        make_product(sku=f"SKU{i}", stock=5)
        add(api_client, token, f"SKU{i}")
    api_client.patch(f"/api/carts/{token}", {"shipping_method": dhl.pk}, format="json")
    two = queries_for_read()
    for i in range(2, 12):
        make_product(sku=f"SKU{i}", stock=5)
        add(api_client, token, f"SKU{i}")
    body = api_client.get(f"/api/carts/{token}").json()
    assert len(body["lines"]) == 12
    assert body["problems"] == []
    assert queries_for_read() == two
    assert two <= 16


# --- Merge at sign-in ----------------------------------------------------------------------------


def sign_in(api_client, user, cart_token: str = ""):
    body = {"email": user.email, "password": DEFAULT_PASSWORD}
    if cart_token:
        body["cart_token"] = cart_token
    response = api_client.post("/api/auth/token", body, format="json")
    assert response.status_code == 200, response.content
    return response


def test_sign_in_with_cart_token_merges_the_anonymous_cart(api_client, client_for, buyer):
    make_product(sku="TEE", stock=500)
    make_product(sku="MUG", stock=500)
    own = new_cart(client_for(buyer))["token"]
    add(client_for(buyer), own, "TEE", 60)
    anonymous = new_cart(api_client)["token"]
    add(api_client, anonymous, "TEE", 70)
    add(api_client, anonymous, "MUG", 2)

    sign_in(api_client, buyer, anonymous)

    body = client_for(buyer).get(f"/api/carts/{own}").json()
    assert {line["sku"]: line["quantity"] for line in body["lines"]} == {"TEE": 100, "MUG": 2}
    assert Cart.objects.get(token=anonymous).status == CartStatus.MERGED
    assert api_client.get(f"/api/carts/{anonymous}").json()["status"] == "merged"
    assert client_for(buyer).post("/api/carts").json()["token"] == own


def test_sign_in_adopts_the_anonymous_cart_when_the_customer_has_none(api_client, buyer):
    make_product(sku="TEE", stock=5)
    anonymous = new_cart(api_client)["token"]
    add(api_client, anonymous, "TEE", 1)
    sign_in(api_client, buyer, anonymous)
    cart = Cart.objects.get(token=anonymous)
    assert cart.user == buyer
    assert cart.status == CartStatus.OPEN
    assert api_client.get(f"/api/carts/{anonymous}").status_code == 404  # now the buyer's


def test_sign_in_with_an_unknown_cart_token_still_signs_in(api_client, buyer):
    sign_in(api_client, buyer, "A" * 32)
    assert not Cart.objects.exists()


# --- Checkout ------------------------------------------------------------------------------------


def test_anonymous_checkout_is_told_to_sign_in(api_client):
    make_product(sku="TEE", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE")
    response = api_client.post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert "cart_token" in response.json()["detail"]
    assert not Order.objects.exists()


def test_checkout_makes_the_order_with_its_breakdown(client_for, buyer, dhl, settings):
    settings.CHECKOUT_HOLD_SECONDS = 1800
    set_rate("DE", "standard", "19")
    tee = make_product(sku="TEE", price="59.50", stock=5)
    voucher = make_voucher("SAVE10", value="10", usage_limit=5)
    client = client_for(buyer)
    token = ready_cart(client, quantity=2, method=dhl)
    client.patch(
        f"/api/carts/{token}", {"voucher_code": "SAVE10", "save_addresses": True}, format="json"
    )

    response = client.post(
        f"/api/carts/{token}/checkout",
        {"payment_token": TOKEN},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == str(order.public_id)
    assert response["Location"] == f"/api/orders/{order.public_id}/"
    # 2 x 59.50 = 119.00, 10% off = 107.10, + 4.90 shipping = 112.00 gross.
    assert order.subtotal == Decimal("119.00")
    assert order.discount_total == Decimal("11.90")
    assert order.shipping_method_name == "DHL"
    assert order.shipping_price == Decimal("4.90")
    assert order.total == Decimal("112.00")
    assert order.tax_total == Decimal("17.88")  # 17.10 on the lines + 0.78 on shipping
    assert order.total_net == order.total - order.tax_total
    assert order.voucher_code == "SAVE10"
    assert order.shipping_address["city"] == "Berlin"
    assert order.billing_address == order.shipping_address
    assert order.email == buyer.email
    held = (order.expires_at - order.created_at).total_seconds()
    assert 1799 <= held <= 1801  # the checkout hold, not the one-call payment timeout
    item = order.items.get()
    assert (item.quantity, item.discount, item.line_total) == (
        2,
        Decimal("11.90"),
        Decimal("107.10"),
    )
    assert stock_of(tee.variant.pk) == 3
    assert StockMovement.objects.filter(reference=f"order:{order.public_id}").count() == 1
    assert_ledger_matches(tee.variant.pk)
    voucher.refresh_from_db()
    assert voucher.used_count == 1
    assert VoucherUse.objects.get().reference == f"order:{order.public_id}"
    cart = Cart.objects.get(token=token)
    assert cart.status == CartStatus.CHECKED_OUT
    assert cart.order_public_id == order.public_id
    assert Address.objects.filter(user=buyer, city="Berlin", is_default_shipping=True).exists()

    replay = client.post(
        f"/api/carts/{token}/checkout",
        {"payment_token": TOKEN},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    again = client.post(
        f"/api/carts/{token}/checkout",
        {"payment_token": TOKEN},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "cart_not_open"
    reused = client.post(
        f"/api/carts/{token}/checkout",
        {"payment_token": "tok_other"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert reused.status_code == 422
    assert Order.objects.count() == 1
    assert Voucher.objects.get(pk=voucher.pk).used_count == 1
    assert stock_of(tee.variant.pk) == 3


def test_checkout_with_problems_is_refused_and_changes_nothing(client_for, buyer, dhl):
    tee = make_product(sku="TEE", price="10.00", stock=1)
    client = client_for(buyer)
    token = ready_cart(client, quantity=2)
    response = client.post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "checkout_problems"
    assert codes(body["problems"]) == ["insufficient_stock", "shipping_method_required"]
    assert not Order.objects.exists()
    assert stock_of(tee.variant.pk) == 1
    assert Cart.objects.get(token=token).status == CartStatus.OPEN


def test_voucher_used_up_meanwhile_refuses_the_checkout(client_for, buyer):
    tee = make_product(sku="TEE", price="10.00", stock=5)
    voucher = make_voucher("LAST", value="10", usage_limit=1)
    client = client_for(buyer)
    token = ready_cart(client, quantity=1)
    client.patch(f"/api/carts/{token}", {"voucher_code": "LAST"}, format="json")
    Voucher.objects.filter(pk=voucher.pk).update(used_count=1)
    response = client.post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN})
    assert response.status_code == 409
    assert codes(response.json()["problems"]) == ["voucher_exhausted"]
    assert not Order.objects.exists()
    assert stock_of(tee.variant.pk) == 5


def test_signed_in_checkout_of_an_anonymous_cart_takes_it_over(api_client, client_for, buyer):
    make_product(sku="TEE", price="10.00", stock=5)
    token = new_cart(api_client)["token"]
    add(api_client, token, "TEE")
    api_client.patch(f"/api/carts/{token}", {"shipping_address": BERLIN}, format="json")
    response = client_for(buyer).post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN})
    assert response.status_code == 201, response.content
    assert Order.objects.get().user == buyer
    assert Cart.objects.get(token=token).status == CartStatus.CHECKED_OUT


def test_voucher_use_comes_back_once_when_the_order_is_cancelled(
    client_for, buyer, django_capture_on_commit_callbacks
):
    make_product(sku="TEE", price="10.00", stock=5)
    voucher = make_voucher("ONCE", value="10", usage_limit=3)
    client = client_for(buyer)
    token = ready_cart(client, quantity=1)
    client.patch(f"/api/carts/{token}", {"voucher_code": "ONCE"}, format="json")
    assert client.post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN}).status_code == 201
    order = Order.objects.get()
    assert Voucher.objects.get(pk=voucher.pk).used_count == 1

    # order.cancelled reaches the release handler through the outbox (eager here).
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.cancel_order(order_id=order.pk, by=buyer)
    assert Voucher.objects.get(pk=voucher.pk).used_count == 0
    message = OutboxMessage.objects.get(topic="order.cancelled", task_name=RELEASE_VOUCHER_USE_TASK)
    assert message.completed_at is not None
    # A redelivered message finds nothing to give back.
    assert release_voucher_use_task(order.pk) is False
    assert release_voucher_use_task(order.pk) is False

    assert Voucher.objects.get(pk=voucher.pk).used_count == 0
    use = VoucherUse.objects.get()
    assert use.released_at is not None
    assert use.release_reason == "cancelled"


# --- The one-call path ---------------------------------------------------------------------------


def test_post_orders_is_priced_through_checkout(client_for, buyer):
    set_rate("DE", "standard", "19")
    tee = make_product(sku="TEE", price="11.90", stock=5)
    response = client_for(buyer).post(
        "/api/orders",
        {"items": [{"id": "TEE", "quantity": 2}], "shipping_country": "DE", "payment_token": TOKEN},
        format="json",
    )
    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert order.total == Decimal("23.80")
    assert order.tax_total == Decimal("3.80")
    assert order.total_net == Decimal("20.00")
    assert order.tax_breakdown == [{"rate": "19", "net": "20.00", "tax": "3.80"}]
    assert stock_of(tee.variant.pk) == 3
    assert not CartLine.objects.exists()


def test_a_full_address_book_does_not_cost_the_order(client_for, buyer, dhl, settings):
    settings.ADDRESS_BOOK_MAX = 1
    make_product(sku="TEE", price="19.90", stock=5)
    Address.objects.create(
        user=buyer,
        first_name="Ada",
        last_name="Lovelace",
        street_address_1="1 Old Road",
        city="Hamburg",
        postal_code="20095",
        country="DE",
    )
    client = client_for(buyer)
    token = ready_cart(client, quantity=1, method=dhl)
    client.patch(f"/api/carts/{token}", {"save_addresses": True}, format="json")

    response = client.post(f"/api/carts/{token}/checkout", {"payment_token": TOKEN}, format="json")

    assert response.status_code == 201, response.content
    assert Order.objects.count() == 1
    assert list(Address.objects.filter(user=buyer).values_list("city", flat=True)) == ["Hamburg"]
    assert Cart.objects.get(token=token).status == CartStatus.CHECKED_OUT
