"""Quotes: which methods ship a cart to a country, in a currency, at what price."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.shipping import selectors, services
from apps.shipping.selectors import ShippingQuote
from ecommerce.db import prepared
from tests.shipping.factories import make_method, make_zone

pytestmark = pytest.mark.django_db

EXPRESS_BANDS = [("0", "1000", "7.90"), ("1000", "5000", "12.90"), ("5000", "20000", "24.90")]


@pytest.fixture
def germany():
    zone = make_zone("germany", ["DE"], name="Germany")
    standard = make_method(zone, "Standard", price="4.90", free_over="50.00", sort_order=1)
    express = make_method(zone, "Express", kind="weight", bands=EXPRESS_BANDS, sort_order=2)
    return zone, standard, express


def offered(
    *,
    country: str = "DE",
    currency: str = "EUR",
    weight_grams: int = 0,
    subtotal: str = "10.00",
) -> list[tuple[str, str, bool]]:
    return [
        (q.name, str(q.price), q.free)
        for q in selectors.quotes(
            country=country,
            currency=currency,
            weight_grams=weight_grams,
            subtotal=Decimal(subtotal),
        )
    ]


@pytest.mark.parametrize(
    ("cart", "expected"),
    [
        ({"weight_grams": 0}, [("Standard", "4.90", False), ("Express", "7.90", False)]),
        ({"weight_grams": 999}, [("Standard", "4.90", False), ("Express", "7.90", False)]),
        ({"weight_grams": 1000}, [("Standard", "4.90", False), ("Express", "12.90", False)]),
        ({"weight_grams": 19999}, [("Standard", "4.90", False), ("Express", "24.90", False)]),
        ({"weight_grams": 20000}, [("Standard", "4.90", False)]),
        ({"subtotal": "49.99"}, [("Standard", "4.90", False), ("Express", "7.90", False)]),
        ({"subtotal": "50.00"}, [("Standard", "0.00", True), ("Express", "7.90", False)]),
        ({"subtotal": "50.00", "weight_grams": 25000}, [("Standard", "0.00", True)]),
        (
            {"country": "de", "currency": "eur"},
            [("Standard", "4.90", False), ("Express", "7.90", False)],
        ),
        ({"country": "AT"}, []),
        ({"currency": "USD"}, []),
    ],
    ids=[
        "empty cart",
        "just under a band",
        "a band's lower bound is inclusive",
        "last band",
        "over the last band: express not offered",
        "just under free-over",
        "free at the threshold",
        "free standard, express too heavy",
        "codes in any letter case",
        "another country",
        "another currency",
    ],
)
def test_quotes_follow_the_rules_of_each_method(germany, cart, expected):
    assert offered(**cart) == expected


def test_a_quote_carries_the_method_and_zone(germany):
    _, standard, express = germany

    found = selectors.quotes(
        country="DE", currency="EUR", weight_grams=1200, subtotal=Decimal("20")
    )

    assert found == [
        ShippingQuote(standard.pk, "Standard", "germany", Decimal("4.90"), "EUR", False),
        ShippingQuote(express.pk, "Express", "germany", Decimal("12.90"), "EUR", False),
    ]


def test_price_bands_charge_by_subtotal_and_open_bands_have_no_ceiling():
    zone = make_zone("eu", ["FR"])
    make_method(
        zone,
        "Tiered",
        kind="price",
        bands=[("0", "30", "6.90"), ("30", "100", "3.90"), ("100", None, "0")],
    )

    assert [
        offered(country="FR", subtotal=s) for s in ("0", "29.99", "30", "99.99", "100", "1e6")
    ] == [
        [("Tiered", "6.90", False)],
        [("Tiered", "6.90", False)],
        [("Tiered", "3.90", False)],
        [("Tiered", "3.90", False)],
        [("Tiered", "0.00", True)],
        [("Tiered", "0.00", True)],
    ]


def test_a_gap_between_bands_offers_nothing_and_overlaps_take_the_lowest_lower_bound():
    zone = make_zone("eu", ["FR"])
    make_method(
        zone,
        "Gappy",
        kind="weight",
        bands=[("500", "3000", "8.00"), ("0", "1000", "5.00"), ("4000", None, "20.00")],
    )

    assert offered(country="FR", weight_grams=800) == [("Gappy", "5.00", False)]
    assert offered(country="FR", weight_grams=1500) == [("Gappy", "8.00", False)]
    assert offered(country="FR", weight_grams=3500) == []
    assert offered(country="FR", weight_grams=10**9) == [("Gappy", "20.00", False)]


def test_inactive_methods_are_not_offered(germany):
    _, standard, _ = germany
    services.update_method(method_id=standard.pk, changes={"is_active": False})

    assert offered() == [("Express", "7.90", False)]


def test_a_country_in_several_zones_gets_the_methods_of_each_cheapest_first():
    dach = make_zone("dach", ["AT", "CH", "DE"])
    eu = make_zone("eu", ["AT", "BE", "DE", "FR", "NL"])
    make_zone("world", ["US"])
    make_method(dach, "Courier", price="12.00")
    make_method(eu, "Standard", price="9.90", sort_order=2)
    make_method(eu, "Economy", price="9.90", sort_order=1)

    found = selectors.quotes(country="AT", currency="EUR", weight_grams=0, subtotal=Decimal("1"))

    assert [(q.zone, q.name, q.price) for q in found] == [
        ("eu", "Economy", Decimal("9.90")),
        ("eu", "Standard", Decimal("9.90")),
        ("dach", "Courier", Decimal("12.00")),
    ]
    assert offered(country="BE") == [("Economy", "9.90", False), ("Standard", "9.90", False)]
    assert offered(country="CH") == [("Courier", "12.00", False)]


def test_a_zero_decimal_currency_quotes_whole_yen():
    zone = make_zone("japan", ["JP"])
    make_method(zone, "Takkyubin", price="800", currency="JPY", free_over="10000")
    make_method(zone, "Yu-Pack", kind="weight", currency="JPY", bands=[("0", "2000", "1200")])

    assert offered(country="JP", currency="JPY", weight_grams=500, subtotal="9999") == [
        ("Takkyubin", "800", False),
        ("Yu-Pack", "1200", False),
    ]
    assert offered(country="JP", currency="JPY", weight_grams=500, subtotal="10000") == [
        ("Takkyubin", "0", True),
        ("Yu-Pack", "1200", False),
    ]
    assert offered(country="JP", currency="EUR") == []


def test_a_flat_rate_of_nothing_is_free():
    zone = make_zone("germany", ["DE"])
    make_method(zone, "Pickup", price="0")

    assert offered() == [("Pickup", "0.00", True)]


def test_quote_prices_one_method_or_says_it_does_not_serve_the_cart(germany):
    _, standard, express = germany
    other = make_method(make_zone("eu", ["FR"]), "Standard", price="9.90")
    cart = {"country": "DE", "currency": "EUR", "weight_grams": 1200, "subtotal": Decimal("60")}

    assert selectors.quote(method_id=standard.pk, **cart) == ShippingQuote(
        standard.pk, "Standard", "germany", Decimal("0"), "EUR", True
    )
    assert selectors.quote(method_id=express.pk, **cart).price == Decimal("12.90")
    assert selectors.quote(method_id=express.pk, **{**cart, "weight_grams": 30000}) is None
    assert selectors.quote(method_id=other.pk, **cart) is None
    assert selectors.quote(method_id=standard.pk, **{**cart, "currency": "CHF"}) is None
    services.update_method(method_id=standard.pk, changes={"is_active": False})
    assert selectors.quote(method_id=standard.pk, **cart) is None
    services.delete_method(method_id=express.pk)
    assert selectors.quote(method_id=express.pk, **cart) is None


def test_quotes_read_the_methods_and_their_bands_in_two_queries():
    for n in range(6):
        zone = make_zone(f"zone-{n}", ["DE", "AT"])
        make_method(zone, "Flat", price="5.00")
        make_method(zone, "Weight", kind="weight", bands=EXPRESS_BANDS)
        make_method(zone, "Value", kind="price", bands=[("0", None, "3.00")])

    with CaptureQueriesContext(connection) as queries:
        found = selectors.quotes(
            country="DE", currency="EUR", weight_grams=100, subtotal=Decimal("10")
        )
        one = selectors.quote(
            method_id=found[-1].method_id,
            country="DE",
            currency="EUR",
            weight_grams=100,
            subtotal=Decimal("10"),
        )

    assert len(found) == 18
    assert one == found[-1]
    assert len(queries) == 4
    assert "@>" in prepared.as_written(queries[0]["sql"])


def test_no_zone_for_the_country_is_one_query_and_no_quote():
    make_method(make_zone("germany", ["DE"]), price="4.90")

    with CaptureQueriesContext(connection) as queries:
        assert (
            selectors.quotes(country="ZZ", currency="EUR", weight_grams=0, subtotal=Decimal("0"))
            == []
        )

    assert len(queries) == 1
