"""The shipping demo data: zones and methods in the store's currency, seeded once."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from apps.shipping import demo, selectors
from apps.shipping.models import ShippingMethod, ShippingZone

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_zones_and_methods_once(settings):
    settings.STORE_CURRENCY = "EUR"
    first, second = io.StringIO(), io.StringIO()

    demo.seed(stdout=first)
    rows = list(ShippingMethod.objects.order_by("pk").values_list("pk", "updated_at"))
    demo.seed(stdout=second)

    assert "3 zones (3 new), 4 methods in EUR (4 new)" in first.getvalue()
    assert "3 zones (0 new), 4 methods in EUR (0 new)" in second.getvalue()
    assert list(ShippingMethod.objects.order_by("pk").values_list("pk", "updated_at")) == rows
    assert ShippingZone.objects.get(slug="germany").countries == ["DE"]
    assert "DE" not in ShippingZone.objects.get(slug="eu").countries
    assert {"AT", "FR", "NL", "BE"} <= set(ShippingZone.objects.get(slug="eu").countries)

    def offered(country: str, grams: int, subtotal: str) -> list[tuple[str, str]]:
        return [
            (q.name, str(q.price))
            for q in selectors.quotes(
                country=country, currency="EUR", weight_grams=grams, subtotal=Decimal(subtotal)
            )
        ]

    assert offered("DE", 500, "20.00") == [("Standard", "4.90"), ("Express", "9.90")]
    assert offered("DE", 5000, "50.00") == [("Standard", "0.00"), ("Express", "14.90")]
    assert offered("FR", 0, "20.00") == [("Standard", "9.90")]
    assert offered("US", 0, "20.00") == [("International", "19.90")]
    assert offered("BR", 0, "20.00") == []


def test_a_zero_decimal_store_currency_gets_whole_amounts(settings):
    settings.STORE_CURRENCY = "JPY"

    demo.seed(stdout=io.StringIO())

    standard = ShippingMethod.objects.get(zone__slug="germany", name="Standard")
    assert (standard.currency, standard.price, standard.free_over) == (
        "JPY",
        Decimal("490"),
        Decimal("5000"),
    )
    express = ShippingMethod.objects.get(zone__slug="germany", name="Express")
    assert list(express.bands.order_by("lower").values_list("lower", "price")) == [
        (Decimal("0"), Decimal("990")),
        (Decimal("2000"), Decimal("1490")),
        (Decimal("10000"), Decimal("2490")),
    ]
