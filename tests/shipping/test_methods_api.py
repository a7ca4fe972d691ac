"""The shipping-method API: catalog managers list, add, read, change and delete a zone's
methods; anyone asks for quotes. Every bad input is a 4xx problem and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.shipping.models import ShippingMethod, ShippingRateBand
from ecommerce.api.permissions import Role
from tests.catalog.asserts import assert_problem
from tests.shipping.factories import make_method, make_zone
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

METHODS = "/api/shipping-methods"
BANDS = [
    {"lower": "0", "upper": "1000", "price": "7.90"},
    {"lower": "1000", "upper": None, "price": "12.90"},
]


@pytest.fixture
def manager_client(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))


@pytest.fixture
def germany():
    return make_zone("germany", ["DE"], name="Germany")


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "methods": list(
            ShippingMethod.objects.order_by("pk").values_list(
                "pk",
                "zone_id",
                "name",
                "kind",
                "price",
                "currency",
                "free_over",
                "is_active",
                "sort_order",
                "updated_at",
            )
        ),
        "bands": list(
            ShippingRateBand.objects.order_by("pk").values_list(
                "pk", "method_id", "lower", "upper", "price"
            )
        ),
    }


def test_a_manager_adds_a_flat_method_to_a_zone(manager_client, germany):
    response = manager_client.post(
        "/api/shipping-zones/germany/methods",
        {"name": "Standard", "price": "4.90", "currency": "eur", "free_over": "50"},
        format="json",
    )

    assert response.status_code == 201, response.content
    method = ShippingMethod.objects.get()
    assert response["Location"] == f"/api/shipping-methods/{method.pk}/"
    assert response.json() == {
        "id": method.pk,
        "zone": "germany",
        "name": "Standard",
        "kind": "flat",
        "price": "4.90",
        "currency": "EUR",
        "free_over": "50.00",
        "is_active": True,
        "sort_order": 0,
        "bands": [],
    }
    assert (method.price, method.currency, method.free_over) == (
        Decimal("4.90"),
        "EUR",
        Decimal("50.00"),
    )
    assert manager_client.get(f"{METHODS}/{method.pk}").json() == response.json()


def test_a_manager_adds_a_weight_method_with_bands(manager_client, germany):
    response = manager_client.post(
        "/api/shipping-zones/germany/methods/",
        {"name": "Express", "kind": "weight", "bands": BANDS, "sort_order": 2},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["price"], body["currency"], body["sort_order"]) == (
        "weight",
        "0.00",
        "EUR",
        2,
    )
    assert body["bands"] == [
        {"lower": "0", "upper": "1000", "price": "7.90"},
        {"lower": "1000", "upper": None, "price": "12.90"},
    ]
    assert list(
        ShippingRateBand.objects.order_by("lower").values_list("lower", "upper", "price")
    ) == [
        (Decimal("0"), Decimal("1000"), Decimal("7.90")),
        (Decimal("1000"), None, Decimal("12.90")),
    ]


def test_yen_amounts_are_whole_and_shown_without_places(manager_client, germany):
    response = manager_client.post(
        "/api/shipping-zones/germany/methods",
        {
            "name": "Yamato",
            "kind": "price",
            "currency": "JPY",
            "free_over": "10000",
            "bands": [{"lower": "0", "upper": "5000", "price": "800"}],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["price"], body["free_over"], body["bands"]) == (
        "0",
        "10000",
        [{"lower": "0", "upper": "5000", "price": "800"}],
    )


def test_a_zones_methods_are_listed_in_sort_order_active_or_not(manager_client, germany):
    express = make_method(germany, "Express", price="9.90", sort_order=2)
    standard = make_method(germany, "Standard", price="4.90", sort_order=1, is_active=False)
    make_method(make_zone("eu", ["FR"]), "Standard", price="9.90")

    response = manager_client.get("/api/shipping-zones/germany/methods")

    assert response.status_code == 200, response.content
    assert [(m["id"], m["is_active"]) for m in response.json()] == [
        (standard.pk, False),
        (express.pk, True),
    ]


def test_a_manager_changes_a_method_and_replaces_its_bands(manager_client, germany):
    method = make_method(germany, "Express", kind="weight", bands=[("0", None, "9.90")])

    renamed = manager_client.patch(
        f"{METHODS}/{method.pk}", {"name": "Express 24h", "free_over": "80.00"}, format="json"
    )
    rebanded = manager_client.patch(f"{METHODS}/{method.pk}", {"bands": BANDS}, format="json")
    flat = manager_client.patch(
        f"{METHODS}/{method.pk}", {"kind": "flat", "price": "6.50", "bands": []}, format="json"
    )

    assert renamed.status_code == 200, renamed.content
    assert (renamed.json()["name"], renamed.json()["free_over"]) == ("Express 24h", "80.00")
    assert len(renamed.json()["bands"]) == 1
    assert rebanded.status_code == 200, rebanded.content
    assert rebanded.json()["bands"] == [
        {"lower": "0", "upper": "1000", "price": "7.90"},
        {"lower": "1000", "upper": None, "price": "12.90"},
    ]
    assert flat.status_code == 200, flat.content
    assert (flat.json()["kind"], flat.json()["price"], flat.json()["bands"]) == ("flat", "6.50", [])
    method.refresh_from_db()
    assert (method.name, method.kind, method.price, method.free_over) == (
        "Express 24h",
        "flat",
        Decimal("6.50"),
        Decimal("80.00"),
    )
    assert not ShippingRateBand.objects.exists()


def test_a_manager_deletes_a_method_with_its_bands(manager_client, germany):
    method = make_method(germany, "Express", kind="weight", bands=[("0", None, "9.90")])

    response = manager_client.delete(f"{METHODS}/{method.pk}")

    assert response.status_code == 204, response.content
    assert not ShippingMethod.objects.exists()
    assert not ShippingRateBand.objects.exists()
    again = manager_client.delete(f"{METHODS}/{method.pk}")
    body = assert_problem(again, 404, "shipping_method_not_found", extra=("method_id",))
    assert body["method_id"] == method.pk


def test_a_name_taken_in_the_zone_and_currency_is_a_409(manager_client, germany):
    make_method(germany, "Standard", price="4.90")
    other = make_method(germany, "Express", price="9.90")
    before = snapshot()

    created = manager_client.post(
        "/api/shipping-zones/germany/methods", {"name": "STANDARD", "price": "1"}, format="json"
    )
    renamed = manager_client.patch(f"{METHODS}/{other.pk}", {"name": "standard"}, format="json")

    for response in (created, renamed):
        body = assert_problem(
            response, 409, "shipping_method_name_taken", extra=("zone", "name", "currency")
        )
        assert (body["zone"], body["currency"]) == ("germany", "EUR")
    assert snapshot() == before
    in_francs = manager_client.post(
        "/api/shipping-zones/germany/methods",
        {"name": "Standard", "price": "5", "currency": "CHF"},
        format="json",
    )
    assert in_francs.status_code == 201, in_francs.content


BAD_METHODS = [
    ({"free_over": ""}, "#/free_over"),  # no threshold is null, never a blank
    ({"free_over": 0}, "#/free_over"),  # amounts are decimal strings, never JSON numbers
    ({"price": 4.9}, "#/price"),
    ({"price": " "}, "#/price"),
    ({"name": ""}, "#/name"),
    ({"name": 5}, "#/name"),
    ({"name": "x" * 121}, "#/name"),
    ({"kind": "volume"}, "#/kind"),
    ({"kind": 1}, "#/kind"),
    ({"price": "-1"}, "#/price"),
    ({"price": "4.999"}, "#/price"),
    ({"price": "abc"}, "#/price"),
    ({"price": "NaN"}, "#/price"),
    ({"price": "Infinity"}, "#/price"),
    ({"price": None}, "#/price"),
    ({"price": True}, "#/price"),
    ({"price": "12345678901"}, "#/price"),
    ({"currency": "EURO"}, "#/currency"),
    ({"currency": "E1R"}, "#/currency"),
    ({"currency": 978}, "#/currency"),
    ({"currency": "KWD"}, "#/currency"),
    ({"currency": "JPY", "price": "4.90"}, "#/price"),
    ({"currency": "JPY", "price": "490", "free_over": "50.50"}, "#/free_over"),
    ({"free_over": "-0.01"}, "#/free_over"),
    ({"is_active": "yes"}, "#/is_active"),
    ({"sort_order": -1}, "#/sort_order"),
    ({"sort_order": 2**31}, "#/sort_order"),
    ({"sort_order": "1.5"}, "#/sort_order"),
    ({"bands": [{"lower": "0", "price": "1"}]}, "#/bands"),
    ({"kind": "weight", "price": "0", "bands": []}, "#/bands"),
    ({"kind": "weight", "price": "4.90", "bands": BANDS}, "#/price"),
    ({"kind": "weight", "bands": "0-1000"}, "#/bands"),
    ({"kind": "weight", "bands": [{"lower": "0", "price": "1"}] * 51}, "#/bands"),
    (
        {"kind": "weight", "bands": [{"lower": "10", "upper": "10", "price": "1"}]},
        "#/bands/0/upper",
    ),
    (
        {"kind": "weight", "bands": [{"lower": "0", "upper": "5", "price": "1"}, {"price": "1"}]},
        "#/bands/1/lower",
    ),
    ({"kind": "weight", "bands": [{"lower": "-1", "price": "1"}]}, "#/bands/0/lower"),
    ({"kind": "weight", "price": "0", "bands": [{"lower": "0.5", "price": "1"}]}, "#/bands"),
    (
        {
            "kind": "price",
            "currency": "JPY",
            "price": "0",
            "bands": [{"lower": "0.50", "price": "1"}],
        },
        "#/bands",
    ),
    ({"kind": "price", "bands": [{"lower": "0", "price": "1.001"}]}, "#/bands/0/price"),
    ({"kind": "price", "bands": [None]}, "#/bands/0"),
]


@pytest.mark.parametrize(("change", "pointer"), BAD_METHODS)
def test_a_bad_method_is_refused_and_stores_nothing(manager_client, germany, change, pointer):
    existing = make_method(germany, "Existing", price="1.00")
    before = snapshot()

    created = manager_client.post(
        "/api/shipping-zones/germany/methods",
        {"name": "Standard", "price": "4.90", **change},
        format="json",
    )
    changed = manager_client.patch(f"{METHODS}/{existing.pk}", change, format="json")

    for response in (created, changed):
        body = assert_problem(response, 400, "validation_error")
        assert {error["pointer"] for error in body["errors"]} == {pointer}, body
    assert snapshot() == before


def test_a_change_is_checked_against_what_the_method_keeps(manager_client, germany):
    method = make_method(germany, "Express", kind="weight", bands=[("0", "500", "4.90")])
    before = snapshot()

    to_yen = manager_client.patch(f"{METHODS}/{method.pk}", {"currency": "JPY"}, format="json")
    to_flat = manager_client.patch(f"{METHODS}/{method.pk}", {"kind": "flat"}, format="json")

    assert {e["pointer"] for e in assert_problem(to_yen, 400, "validation_error")["errors"]} == {
        "#/bands"
    }
    assert {e["pointer"] for e in assert_problem(to_flat, 400, "validation_error")["errors"]} == {
        "#/bands"
    }
    assert snapshot() == before


def test_unknown_zones_and_methods_are_404s(manager_client, germany):
    before = snapshot()

    responses = {
        "shipping_zone_not_found": [
            manager_client.get("/api/shipping-zones/atlantis/methods"),
            manager_client.post(
                "/api/shipping-zones/atlantis/methods", {"name": "S", "price": "1"}, format="json"
            ),
        ],
        "shipping_method_not_found": [
            manager_client.get(f"{METHODS}/999999"),
            manager_client.patch(f"{METHODS}/999999", {"name": "S"}, format="json"),
            manager_client.delete(f"{METHODS}/999999"),
        ],
        "not_found": [
            manager_client.get(f"{METHODS}/99999999999999999999"),
            manager_client.get(f"{METHODS}/0"),
            manager_client.patch(f"{METHODS}/abc", {"name": "S"}, format="json"),
        ],
    }

    for code, answers in responses.items():
        for response in answers:
            assert_problem(
                response,
                404,
                code,
                extra=()
                if code == "not_found"
                else ("zone" if code == "shipping_zone_not_found" else "method_id",),
            )
    assert snapshot() == before


def test_a_body_that_is_not_an_object_is_a_400(manager_client, germany):
    method = make_method(germany, "Standard", price="4.90")
    before = snapshot()

    responses = [
        manager_client.post("/api/shipping-zones/germany/methods", ["x"], format="json"),
        manager_client.patch(f"{METHODS}/{method.pk}", "x", format="json"),
        manager_client.post(
            "/api/shipping-zones/germany/methods", b"{", content_type="application/json"
        ),
    ]

    for response in responses:
        assert_problem(response, 400, response.json()["code"])
    assert snapshot() == before


def test_methods_are_written_by_catalog_managers_and_admins(client_for, api_client, germany):
    method = make_method(germany, "Standard", price="4.90")
    before = snapshot()
    body = {"name": "Express", "price": "9.90"}
    refused = {
        client_for(UserFactory(roles=[Role.CUSTOMER])): 403,
        client_for(UserFactory(roles=[Role.SUPPORT])): 403,
        api_client: 401,
    }

    for client, status in refused.items():
        assert client.get("/api/shipping-zones/germany/methods").status_code == status
        assert (
            client.post("/api/shipping-zones/germany/methods", body, format="json").status_code
            == status
        )
        assert client.get(f"{METHODS}/{method.pk}").status_code == status
        assert (
            client.patch(f"{METHODS}/{method.pk}", {"name": "N"}, format="json").status_code
            == status
        )
        assert client.delete(f"{METHODS}/{method.pk}").status_code == status
        assert client.put(f"{METHODS}/{method.pk}", body, format="json").status_code in (
            status,
            405,
        )
    assert snapshot() == before

    admin = client_for(UserFactory(roles=[Role.ADMIN]))
    created = admin.post("/api/shipping-zones/germany/methods", body, format="json")
    assert created.status_code == 201
    assert (
        admin.patch(f"{METHODS}/{created.json()['id']}", {"price": "8"}, format="json").json()[
            "price"
        ]
        == "8.00"
    )
    assert admin.delete(f"{METHODS}/{method.pk}").status_code == 204


# --- quotes ------------------------------------------------------------------------------


@pytest.fixture
def shop(germany):
    standard = make_method(germany, "Standard", price="4.90", free_over="50.00", sort_order=1)
    express = make_method(
        germany,
        "Express",
        kind="weight",
        bands=[("0", "1000", "7.90"), ("1000", "5000", "12.90")],
        sort_order=2,
    )
    return standard, express


def test_anyone_gets_the_quotes_for_a_cart(api_client, shop):
    standard, express = shop

    response = api_client.get(
        METHODS, {"country": "de", "currency": "eur", "weight_grams": "1200", "subtotal": "20.00"}
    )

    assert response.status_code == 200, response.content
    assert response.json() == [
        {
            "id": standard.pk,
            "name": "Standard",
            "zone": "germany",
            "price": "4.90",
            "currency": "EUR",
            "free": False,
        },
        {
            "id": express.pk,
            "name": "Express",
            "zone": "germany",
            "price": "12.90",
            "currency": "EUR",
            "free": False,
        },
    ]


def test_quotes_default_to_the_store_currency_an_empty_cart(api_client, shop, settings):
    settings.STORE_CURRENCY = "EUR"

    free = api_client.get(METHODS, {"country": "DE", "subtotal": "50"}).json()
    empty = api_client.get(METHODS, {"country": "DE"}).json()
    elsewhere = api_client.get(METHODS, {"country": "FR"}).json()
    dollars = api_client.get(METHODS, {"country": "DE", "currency": "USD"}).json()

    assert [(q["name"], q["price"], q["free"]) for q in free] == [
        ("Standard", "0.00", True),
        ("Express", "7.90", False),
    ]
    assert [(q["name"], q["price"]) for q in empty] == [("Standard", "4.90"), ("Express", "7.90")]
    assert elsewhere == dollars == []


def test_yen_quotes_have_no_places(api_client):
    make_method(make_zone("japan", ["JP"]), "Yamato", price="800", currency="JPY")

    response = api_client.get(METHODS, {"country": "JP", "currency": "JPY", "subtotal": "1200"})

    assert [(q["price"], q["currency"]) for q in response.json()] == [("800", "JPY")]


BAD_QUERIES = [
    ({}, "#/country"),
    ({"country": ""}, "#/country"),
    ({"country": "DEU"}, "#/country"),
    ({"country": "D1"}, "#/country"),
    ({"country": "D\x00"}, "#/country"),
    ({"country": "DE", "currency": "EURO"}, "#/currency"),
    ({"country": "DE", "currency": "€"}, "#/currency"),
    ({"country": "DE", "weight_grams": "-1"}, "#/weight_grams"),
    ({"country": "DE", "weight_grams": "1.5"}, "#/weight_grams"),
    ({"country": "DE", "weight_grams": "١٢"}, "#/weight_grams"),
    ({"country": "DE", "weight_grams": str(2**63)}, "#/weight_grams"),
    ({"country": "DE", "weight_grams": "x"}, "#/weight_grams"),
    ({"country": "DE", "subtotal": "-1"}, "#/subtotal"),
    ({"country": "DE", "subtotal": "1.001"}, "#/subtotal"),
    ({"country": "DE", "subtotal": "NaN"}, "#/subtotal"),
    ({"country": "DE", "subtotal": "1e400"}, "#/subtotal"),
    ({"country": "DE", "subtotal": "abc"}, "#/subtotal"),
    ({"country": "DE", "currency": "JPY", "subtotal": "10.50"}, "#/subtotal"),
    ({"country": "DE", "currency": "KWD", "subtotal": "10"}, "#/subtotal"),
]


@pytest.mark.parametrize(("query", "pointer"), BAD_QUERIES)
def test_a_bad_quote_query_is_a_400(api_client, shop, query, pointer):
    response = api_client.get(METHODS, query)

    body = assert_problem(response, 400, "validation_error")
    assert {error["pointer"] for error in body["errors"]} == {pointer}
