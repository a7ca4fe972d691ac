"""Each staff role's daily task, walked in a real browser through the Django admin.

- support: find a customer's order by their email and refund part of it;
- catalog manager: restock a product in a warehouse, with a reason;
- admin: resend a customer's notification;
- anyone: the API docs (Swagger UI and ReDoc) render from the project's own pinned assets.

Each test checks what the page says and what the database holds afterwards.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.catalog.models import Product
from apps.inventory.models import Stock, StockMovement
from apps.notifications.models import Notification
from apps.orders import services as orders
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Refund, RefundStatus
from apps.payments.selectors import money_ledger_report
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.browser.conftest import log_in
from tests.catalog.factories import make_product
from tests.users.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp-oak", name="Oak desk lamp", stock=10, price="40.00")


@pytest.fixture
def ann() -> User:
    return UserFactory(email="ann.walker@example.com", name="Ann Walker")


@pytest.fixture
def paid_order(lamp: Product, ann: User) -> Order:
    # A second customer's order, which the search must not return.
    other = UserFactory(email="bob@example.com")
    orders.place_order(user=other, lines=[orders.OrderLine("lamp-oak", 1)], payment_token="tok_x")
    order, _ = orders.place_order(
        user=ann, lines=[orders.OrderLine("lamp-oak", 2)], payment_token="tok_success"
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def assert_money_ledger_adds_up() -> None:
    report = money_ledger_report(since=None, settled_before=timezone.now())
    assert not report.breaks, [b.describe() for b in report.breaks]


def staff(role: Role, email: str) -> User:
    return UserFactory(email=email, is_staff=True, roles=[role])


def message(page: Any) -> str:
    return page.locator("ul.messagelist").inner_text()


def test_support_finds_an_order_by_email_and_refunds_part_of_it(page, paid_order):
    log_in(page, staff(Role.SUPPORT, "help@example.com").email, DEFAULT_PASSWORD)

    # when: Orders, search by the customer's email
    page.click("#content-main a[href='/admin/orders/order/']")
    page.fill("#searchbar", "ann.walker@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/orders/order/?q=*")

    # then: exactly her order, which opens on its page
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    rows.first.locator("th a").click()
    assert str(paid_order.public_id) in page.locator("#content").inner_text()
    body = page.locator("#content-main").inner_text()
    assert "ann.walker@example.com" in body
    assert "Paid" in body
    assert page.locator("input[name=_save]").count() == 0

    # when: refund 30.00 of the 80.00 paid, with a reason
    page.get_by_role("link", name="Refund an amount").click()
    page.get_by_label("Amount to refund").fill("30.00")
    page.get_by_label("Reason").fill("one lamp arrived scratched")
    page.get_by_role("button", name="Refund").click()

    # then: back on the order, the message and the database say 30.00 went back, 50.00 stays
    page.wait_for_url(f"**/admin/orders/order/{paid_order.pk}/change/")
    assert "30.00" in message(page)
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.PAID
    assert paid_order.amount_paid == Decimal("50.00")
    (refund,) = Refund.objects.filter(order=paid_order)
    assert (refund.amount, refund.status, refund.reason) == (
        Decimal("30.00"),
        RefundStatus.SUCCEEDED,
        "one lamp arrived scratched",
    )
    assert "one lamp arrived scratched" in page.locator("#content-main").inner_text()
    assert_money_ledger_adds_up()


def test_catalog_manager_restocks_a_product(page, lamp):
    log_in(page, staff(Role.CATALOG_MANAGER, "stock@example.com").email, DEFAULT_PASSWORD)
    before = Stock.objects.get(variant=lamp.variant).quantity

    # when: find the product, open its stock form from the stock table, restock 5
    page.click("#content-main a[href='/admin/catalog/product/']")
    page.fill("#searchbar", "lamp-oak")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/catalog/product/?q=*")
    page.locator("#result_list tbody tr th a").first.click()
    page.get_by_role("link", name="Restock or adjust").click()
    page.select_option("#id_variant", label="lamp-oak")
    page.select_option("#id_warehouse", index=1)
    page.select_option("#id_kind", value="restock")
    page.fill("#id_quantity", "5")
    page.fill("#id_note", "delivery note DN-1042")
    page.click("input[type=submit]")

    # then: the message says what happened, and the ledger and stock agree
    assert "Restocked 5 of lamp-oak" in message(page)
    assert "delivery note DN-1042" in message(page)
    assert Stock.objects.get(variant=lamp.variant).quantity == before + 5
    movement = StockMovement.objects.filter(variant=lamp.variant).latest("pk")
    assert (movement.delta, movement.note) == (5, "delivery note DN-1042")


def test_admin_resends_a_customers_notification(mailoutbox, page, paid_order, ann):
    log_in(page, staff(Role.ADMIN, "boss@example.com").email, DEFAULT_PASSWORD)
    paid_email = Notification.objects.get(recipient=ann, event="order_paid", channel="email")

    def paid_emails_to_ann() -> int:
        return sum(
            1 for m in mailoutbox if ann.email in m.to and m.subject.startswith("Payment received")
        )

    assert paid_emails_to_ann() == 1  # sent when the order was paid

    # when: Notifications, search her email, select the "paid" one, run "resend"
    page.click("#content-main a[href='/admin/notifications/notification/']")
    page.fill("#searchbar", "ann.walker@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/notifications/notification/?q=*")
    row = page.locator("#result_list tbody tr", has_text="Order paid")
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", value="resend")
    page.click("button[name=index]")

    # then: the message names what was queued, and it was delivered again
    assert f"Queued 1 notification(s) again: {paid_email.public_id} to ann.walker" in message(page)
    assert paid_emails_to_ann() == 2


@pytest.mark.parametrize(
    ("path", "rendered"), [("/api/docs", ".opblock"), ("/api/redoc", ".api-content h1")]
)
def test_the_api_docs_render_from_pinned_local_assets(page, path, rendered):
    page.goto(path)

    # then: rendered with operations, and every asset came from this server (the page
    # fixture fails the test on any request off loopback)
    page.locator(rendered).first.wait_for(timeout=60_000)
    assert "E-commerce" in page.locator("body").inner_text() or page.title()
