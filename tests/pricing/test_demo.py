"""The demo pricing: rates for the store's countries, WELCOME10 and a promotion, seeded once."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from apps.catalog import demo as catalog_demo
from apps.pricing import demo, selectors
from apps.pricing.models import Promotion, TaxRate, TaxSettings, Voucher

pytestmark = pytest.mark.django_db


def test_seeding_twice_creates_everything_once():
    catalog_demo.seed(stdout=io.StringIO())
    demo.seed(stdout=io.StringIO())
    second = io.StringIO()
    demo.seed(stdout=second)

    assert TaxRate.objects.count() == 3 * len(demo.DEMO_RATES)
    assert selectors.tax_rates("DE") == {
        "standard": Decimal("19"),
        "reduced": Decimal("7"),
        "zero": Decimal("0"),
    }
    assert selectors.tax_rates("FR")["reduced"] == Decimal("5.5")
    assert TaxSettings.objects.get().prices_include_tax is True
    welcome = Voucher.objects.get()
    assert (welcome.code, welcome.kind, welcome.value, welcome.per_customer_limit) == (
        "WELCOME10",
        "percentage",
        Decimal("10"),
        1,
    )
    promotion = Promotion.objects.get()
    assert promotion.is_active
    assert list(promotion.categories.values_list("slug", flat=True)) == ["home"]
    assert "(0 new)" in second.getvalue()
    assert "(new)" not in second.getvalue()
