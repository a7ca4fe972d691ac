"""Pricing admin: every page loads, voucher uses are read-only with links to their order,
the tax setting is a singleton, vouchers are validated as the models say, and the roles."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client

from apps.pricing import services
from apps.pricing.models import Promotion, TaxClass, TaxRate, TaxSettings, Voucher, VoucherUse
from ecommerce.api.permissions import Role
from tests.catalog.factories import CategoryFactory, make_product
from tests.pricing.factories import make_promotion, make_voucher, set_rate
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/pricing"


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


@pytest.fixture
def superuser(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def used_voucher() -> Voucher:
    voucher = make_voucher("SPRING", usage_limit=5)
    buyer = UserFactory(email="buyer@example.com")
    services.claim_voucher(
        code="SPRING", reference="order:6f1c0a52-1111-4a4a-9c9c-000000000001", user=buyer
    )
    services.claim_voucher(code="SPRING", reference="order:gone", user=None)
    services.release_voucher_use(reference="order:gone", reason="expired")
    return voucher


def test_every_pricing_page_loads_for_a_superuser(superuser, used_voucher):
    rate = set_rate("DE", "standard", "19")
    TaxSettings.objects.create()
    promotion = make_promotion("Sale", categories=[CategoryFactory()])
    use = VoucherUse.objects.first()
    pages = [
        f"{ADMIN}/taxclass/",
        f"{ADMIN}/taxclass/add/",
        f"{ADMIN}/taxclass/{rate.tax_class_id}/change/",
        f"{ADMIN}/taxrate/",
        f"{ADMIN}/taxrate/{rate.pk}/change/",
        f"{ADMIN}/taxsettings/1/change/",
        f"{ADMIN}/voucher/",
        f"{ADMIN}/voucher/?q=spr",
        f"{ADMIN}/voucher/add/",
        f"{ADMIN}/voucher/{used_voucher.pk}/change/",
        f"{ADMIN}/voucheruse/",
        f"{ADMIN}/voucheruse/?released_at__isempty=1",
        f"{ADMIN}/voucheruse/{use.pk}/change/",
        f"{ADMIN}/promotion/",
        f"{ADMIN}/promotion/add/",
        f"{ADMIN}/promotion/{promotion.pk}/change/",
    ]
    for page in pages:
        assert superuser.get(page).status_code == 200, page


def test_the_voucher_list_shows_uses_of_limit_and_the_window(superuser, used_voucher):
    page = superuser.get(f"{ADMIN}/voucher/").content.decode()

    assert "SPRING" in page
    assert "1 / 5" in page
    assert "always" in page


def test_the_voucher_page_lists_its_uses_with_order_and_customer_links(superuser, used_voucher):
    page = superuser.get(f"{ADMIN}/voucher/{used_voucher.pk}/change/").content.decode()

    assert "/admin/orders/order/?q=6f1c0a52-1111-4a4a-9c9c-000000000001" in page
    assert "buyer@example.com" in page
    assert "order:gone" in page
    assert "expired" in page


def test_voucher_uses_cannot_be_added_changed_or_deleted(superuser, used_voucher):
    use = VoucherUse.objects.get(reference="order:gone")
    before = list(VoucherUse.objects.order_by("pk").values())

    assert superuser.get(f"{ADMIN}/voucheruse/add/").status_code == 403
    assert superuser.post(f"{ADMIN}/voucheruse/add/", {"reference": "x"}).status_code == 403
    assert (
        superuser.post(
            f"{ADMIN}/voucheruse/{use.pk}/change/", {"release_reason": "edited"}
        ).status_code
        == 403
    )
    assert superuser.get(f"{ADMIN}/voucheruse/{use.pk}/delete/").status_code == 403
    assert (
        superuser.post(f"{ADMIN}/voucheruse/{use.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    changelist = superuser.get(f"{ADMIN}/voucheruse/").content.decode()
    assert "delete_selected" not in changelist
    assert list(VoucherUse.objects.order_by("pk").values()) == before


def test_the_tax_settings_are_added_once_and_never_deleted(superuser):
    assert superuser.get(f"{ADMIN}/taxsettings/add/").status_code == 200
    response = superuser.post(
        f"{ADMIN}/taxsettings/add/", {"prices_include_tax": "", "shipping_tax_class": ""}
    )
    assert response.status_code == 302
    assert TaxSettings.objects.get().prices_include_tax is False

    assert superuser.get(f"{ADMIN}/taxsettings/add/").status_code == 403
    assert superuser.get(f"{ADMIN}/taxsettings/1/delete/").status_code == 403
    assert superuser.get(f"{ADMIN}/taxsettings/").url == f"{ADMIN}/taxsettings/1/change/"


def test_a_tax_class_is_saved_with_its_rates_inline(superuser):
    response = superuser.post(
        f"{ADMIN}/taxclass/add/",
        {
            "slug": "books",
            "name": "Books",
            "rates-TOTAL_FORMS": "2",
            "rates-INITIAL_FORMS": "0",
            "rates-0-country": "de",
            "rates-0-rate": "7",
            "rates-1-country": "FR",
            "rates-1-rate": "5.5",
        },
    )

    assert response.status_code == 302
    books = TaxClass.objects.get(slug="books")
    assert sorted(books.rates.values_list("country", "rate")) == [
        ("DE", Decimal("7.00")),
        ("FR", Decimal("5.50")),
    ]


def test_a_rate_over_100_is_a_form_error(superuser):
    response = superuser.post(
        f"{ADMIN}/taxrate/add/",
        {"country": "DE", "tax_class": TaxClass.objects.get(slug="standard").pk, "rate": "120"},
    )

    assert response.status_code == 200
    assert not TaxRate.objects.exists()


def voucher_form(**fields: str) -> dict[str, str]:
    form = {
        "code": "autumn",
        "name": "",
        "is_active": "on",
        "kind": "percentage",
        "value": "15",
        "currency": "EUR",
        "min_spend": "",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "usage_limit": "",
        "per_customer_limit": "",
        "uses-TOTAL_FORMS": "0",
        "uses-INITIAL_FORMS": "0",
    }
    form.update(fields)
    return form


def test_a_voucher_added_in_the_admin_is_stored_in_capitals(superuser):
    product = make_product(sku="AUT")

    response = superuser.post(f"{ADMIN}/voucher/add/", voucher_form(products=str(product.pk)))

    assert response.status_code == 302
    voucher = Voucher.objects.get()
    assert voucher.code == "AUTUMN"
    assert list(voucher.products.all()) == [product]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"value": "0"}, "A percentage is over 0"),
        ({"value": "150"}, "A percentage is over 0"),
        ({"kind": "fixed", "value": "5.555"}, "Ensure that there are no more than 2 decimal"),
        ({"kind": "fixed", "value": "5.5", "currency": "JPY"}, "JPY amounts have no decimal"),
        ({"min_spend": "10.5", "currency": "JPY"}, "JPY amounts have no decimal"),
        ({"code": "spring"}, "Voucher with this Code already exists"),
        ({"code": "no spaces"}, "A code is 1-32 capital letters"),
        (
            {
                "starts_at_0": "2026-05-02",
                "starts_at_1": "00:00",
                "ends_at_0": "2026-05-01",
                "ends_at_1": "00:00",
            },
            "The end must come after the start",
        ),
    ],
)
def test_invalid_vouchers_are_form_errors(superuser, fields, message):
    make_voucher("SPRING")

    response = superuser.post(f"{ADMIN}/voucher/add/", voucher_form(**fields))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert Voucher.objects.count() == 1


def test_saving_a_voucher_in_the_admin_keeps_uses_claimed_meanwhile(superuser):
    voucher = make_voucher("LIVE", usage_limit=10)
    page = superuser.get(f"{ADMIN}/voucher/{voucher.pk}/change/")
    assert page.status_code == 200
    services.claim_voucher(code="LIVE", reference="order:meanwhile", user=None)

    inline = {
        "uses-TOTAL_FORMS": "1",
        "uses-INITIAL_FORMS": "1",
        "uses-0-id": str(VoucherUse.objects.get().pk),
        "uses-0-voucher": str(voucher.pk),
    }
    response = superuser.post(
        f"{ADMIN}/voucher/{voucher.pk}/change/",
        voucher_form(code="LIVE", usage_limit="20", **inline),
    )

    assert response.status_code == 302
    voucher.refresh_from_db()
    assert (voucher.usage_limit, voucher.used_count) == (20, 1)


@pytest.mark.django_db(transaction=True)
def test_a_use_claimed_while_the_admin_saves_a_lower_limit_is_a_form_error(superuser):
    """The claim commits between the admin reading the voucher and saving it: the limit
    is checked against the count under the row lock, never left to the database's CHECK."""
    voucher = make_voucher("RACE", usage_limit=5)
    services.claim_voucher(code="RACE", reference="order:first", user=None)
    locked = threading.Event()

    def claim_and_hold() -> None:
        try:
            with transaction.atomic():
                services.claim_voucher(code="RACE", reference="order:second", user=None)
                locked.set()
                time.sleep(1.0)  # the admin's save reaches the row meanwhile
        finally:
            connection.close()

    claimer = threading.Thread(target=claim_and_hold)
    claimer.start()
    assert locked.wait(10)
    response = superuser.post(
        f"{ADMIN}/voucher/{voucher.pk}/change/",
        voucher_form(code="RACE", usage_limit="1", **{"uses-TOTAL_FORMS": "0"}),
    )
    claimer.join()

    assert response.status_code == 200
    assert "It has been used 2 times already." in response.content.decode()
    voucher.refresh_from_db()
    assert (voucher.usage_limit, voucher.used_count) == (5, 2)


def test_a_buy_x_pay_y_promotion_needs_x_over_y(superuser):
    form = {
        "name": "Bundle",
        "is_active": "on",
        "kind": "buy_x_pay_y",
        "value": "0",
        "currency": "EUR",
        "buy_quantity": "2",
        "pay_quantity": "2",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
    }
    refused = superuser.post(f"{ADMIN}/promotion/add/", form)
    accepted = superuser.post(f"{ADMIN}/promotion/add/", {**form, "buy_quantity": "3"})

    assert refused.status_code == 200
    assert "Buy more than you pay" in refused.content.decode()
    assert accepted.status_code == 302
    assert Promotion.objects.get().buy_quantity == 3


@pytest.mark.parametrize(
    ("role", "may_add_voucher", "may_view_uses"),
    [
        (Role.CATALOG_MANAGER, True, True),
        (Role.ADMIN, True, True),
        (Role.SUPPORT, False, True),
        (Role.CUSTOMER, False, False),
    ],
)
def test_roles(client, used_voucher, role, may_add_voucher, may_view_uses):
    client.force_login(UserFactory(is_staff=True, roles=[role]))

    add = client.get(f"{ADMIN}/voucher/add/")
    uses = client.get(f"{ADMIN}/voucheruse/")

    assert (add.status_code == 200) is may_add_voucher
    assert (uses.status_code == 200) is may_view_uses
    if may_view_uses:
        assert client.get(f"{ADMIN}/voucher/{used_voucher.pk}/change/").status_code == 200
