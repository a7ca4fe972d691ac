"""The staff pricing API: vouchers with their uses, tax rates and promotions, read by
support and catalog managers; refused to customers and strangers as problem+json."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.pricing import services
from apps.pricing.models import Promotion, Voucher
from ecommerce.api.permissions import Role
from tests.catalog.factories import CategoryFactory, make_product
from tests.pricing.factories import make_promotion, make_voucher, set_rate
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client_for):
    return client_for(UserFactory(roles=[Role.SUPPORT]))


def test_vouchers_are_listed_by_code_with_filters(staff):
    product = make_product(sku="V-API")
    category = CategoryFactory()
    make_voucher("SPRING", products=[product], categories=[category])
    make_voucher("FIVER", kind=Voucher.Kind.FIXED, value="5.00", min_spend=Decimal("20.00"))
    make_voucher("OLD", is_active=False)
    make_voucher("YEN", kind=Voucher.Kind.FIXED, value="500", currency="JPY")

    everything = staff.get("/api/vouchers")
    active = staff.get("/api/vouchers?is_active=true&search=r")

    assert everything.status_code == 200
    results = {v["code"]: v for v in everything.json()["results"]}
    assert list(results) == ["FIVER", "OLD", "SPRING", "YEN"]
    assert results["SPRING"]["value"] == "10"
    assert results["SPRING"]["product_ids"] == [product.pk]
    assert results["SPRING"]["category_ids"] == [category.pk]
    assert (results["FIVER"]["value"], results["FIVER"]["min_spend"]) == ("5.00", "20.00")
    assert results["YEN"]["value"] == "500"
    assert [v["code"] for v in active.json()["results"]] == ["FIVER", "SPRING"]


def test_a_voucher_and_its_uses_by_code_in_any_letter_case(staff):
    make_voucher("SPRING", usage_limit=10)
    buyer = UserFactory()
    services.claim_voucher(code="SPRING", reference="order:a", user=buyer)
    services.claim_voucher(code="SPRING", reference="order:b", user=None)
    services.release_voucher_use(reference="order:a", reason="cancelled")

    voucher = staff.get("/api/vouchers/spring")
    uses = staff.get("/api/vouchers/Spring/uses")

    assert voucher.status_code == 200
    assert (voucher.json()["used_count"], voucher.json()["usage_limit"]) == (1, 10)
    assert uses.status_code == 200
    rows = uses.json()["results"]
    assert [(u["reference"], u["user_id"], u["release_reason"]) for u in rows] == [
        ("order:b", None, ""),
        ("order:a", buyer.pk, "cancelled"),
    ]
    assert rows[0]["released_at"] is None
    assert rows[1]["released_at"] is not None


def test_an_unknown_voucher_is_a_404_problem(staff):
    for url in ("/api/vouchers/NOPE", "/api/vouchers/nope/uses"):
        response = staff.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "voucher_not_found"


def test_tax_rates_per_country(staff):
    set_rate("DE", "standard", "19")
    set_rate("DE", "reduced", "7")
    set_rate("FR", "reduced", "5.5")

    every = staff.get("/api/tax-rates")
    french = staff.get("/api/tax-rates?country=fr")

    assert every.json() == [
        {"country": "DE", "tax_class": "reduced", "rate": "7"},
        {"country": "DE", "tax_class": "standard", "rate": "19"},
        {"country": "FR", "tax_class": "reduced", "rate": "5.5"},
    ]
    assert french.json() == [{"country": "FR", "tax_class": "reduced", "rate": "5.5"}]


def test_promotions_are_listed(staff):
    category = CategoryFactory()
    bundle = make_promotion(
        "3 for 2",
        kind=Promotion.Kind.BUY_X_PAY_Y,
        value="0",
        buy_quantity=3,
        pay_quantity=2,
        categories=[category],
    )

    [row] = staff.get("/api/promotions").json()["results"]

    assert row["id"] == bundle.pk
    assert (row["kind"], row["value"], row["buy_quantity"], row["pay_quantity"]) == (
        "buy_x_pay_y",
        "0",
        3,
        2,
    )
    assert row["category_ids"] == [category.pk]


@pytest.mark.parametrize(
    "url",
    [
        "/api/vouchers?is_active=maybe",
        "/api/vouchers?search=" + "x" * 33,
        "/api/tax-rates?country=DEU",
    ],
)
def test_bad_query_parameters_are_400_problems(staff, url):
    response = staff.get(url)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("url", ["/api/vouchers", "/api/tax-rates", "/api/promotions"])
def test_customers_and_strangers_are_refused(api_client, client_for, url):
    assert api_client.get(url).status_code == 401
    customer = client_for(UserFactory(roles=[Role.CUSTOMER]))
    assert customer.get(url).status_code == 403
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    assert manager.get(url).status_code == 200
