"""Pricing reads: the cached tax setting (invalidated on save, served through a cache
outage), rates per country, running promotions, line inputs with category ancestors, and
price_items putting them together."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.catalog.models import ProductType, ProductVariant
from apps.pricing import selectors
from apps.pricing.models import Promotion, TaxSettings
from apps.pricing.selectors import TaxSettingsData
from ecommerce import caching
from tests.catalog.factories import CategoryFactory, make_product
from tests.pricing.factories import make_promotion, make_voucher, set_rate, tax_class
from tests.servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache_not_bypassed() -> Iterator[None]:
    caching.reset_bypass()
    yield
    caching.reset_bypass()


def loaded(*products) -> list[ProductVariant]:
    return list(
        selectors.variants_for_pricing().filter(product__in=products).order_by("product_id")
    )


# --- The tax setting ------------------------------------------------------------------------


def test_tax_settings_default_to_gross_prices_and_the_standard_class_for_shipping():
    assert selectors.tax_settings() == TaxSettingsData(
        prices_include_tax=True, shipping_tax_class="standard"
    )


def test_tax_settings_are_read_once_then_served_from_the_cache(django_assert_num_queries):
    TaxSettings.objects.create(prices_include_tax=False, shipping_tax_class=tax_class("reduced"))
    with django_assert_num_queries(1):
        first = selectors.tax_settings()
    with django_assert_num_queries(0):
        second = selectors.tax_settings()
    assert (
        first == second == TaxSettingsData(prices_include_tax=False, shipping_tax_class="reduced")
    )


def test_saving_the_tax_settings_retires_the_cached_value(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        setting = TaxSettings.objects.create(prices_include_tax=True)
    assert selectors.tax_settings().prices_include_tax is True  # cached now

    with django_capture_on_commit_callbacks(execute=True):
        setting.prices_include_tax = False
        setting.save()

    assert selectors.tax_settings().prices_include_tax is False


def test_renaming_the_shipping_class_retires_the_cached_slug(django_capture_on_commit_callbacks):
    special = tax_class("special")
    with django_capture_on_commit_callbacks(execute=True):
        TaxSettings.objects.create(shipping_tax_class=special)
    assert selectors.tax_settings().shipping_tax_class == "special"

    with django_capture_on_commit_callbacks(execute=True):
        special.slug = "shipping"
        special.save()

    assert selectors.tax_settings().shipping_tax_class == "shipping"


def test_tax_settings_are_read_from_the_database_when_the_cache_is_down(settings):
    TaxSettings.objects.create(prices_include_tax=False)
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }

    assert selectors.tax_settings().prices_include_tax is False
    assert selectors.tax_settings().prices_include_tax is False  # bypassing, still right


# --- Rates ----------------------------------------------------------------------------------


def test_tax_rates_of_a_country_by_class_slug_in_any_letter_case():
    set_rate("DE", "standard", "19")
    set_rate("DE", "reduced", "7")
    set_rate("AT", "standard", "20")

    assert selectors.tax_rates("de") == {"standard": Decimal("19.00"), "reduced": Decimal("7.00")}
    assert selectors.tax_rates("AT") == {"standard": Decimal("20.00")}
    assert selectors.tax_rates("US") == {}


# --- Line inputs ----------------------------------------------------------------------------


def test_line_inputs_carry_category_ancestors_and_the_rate_of_the_type_class(
    django_assert_num_queries,
):
    set_rate("DE", "standard", "19")
    set_rate("DE", "reduced", "7")
    home = CategoryFactory(name="Home")
    kitchen = CategoryFactory(name="Kitchen", parent=home)
    knives = CategoryFactory(name="Knives", parent=kitchen)
    books = CategoryFactory(name="Books")
    book_type = ProductType.objects.create(name="Book", slug="book", tax_class="reduced")
    knife = make_product(sku="KNIFE", price="49.90", category=knives)
    novel = make_product(sku="NOVEL", price="12.00", category=books, product_type=book_type)
    loose = make_product(sku="LOOSE", price="5.00")
    variants = loaded(knife, novel, loose)

    with django_assert_num_queries(2):  # the ancestors, the rates
        lines = selectors.line_inputs(
            [(variants[0], 2), (variants[1], 1), (variants[2], 3)], country="DE"
        )

    assert [line.key for line in lines] == ["KNIFE", "NOVEL", "LOOSE"]
    assert lines[0].category_ids == frozenset({knives.pk, kitchen.pk, home.pk})
    assert lines[1].category_ids == frozenset({books.pk})
    assert lines[2].category_ids == frozenset()
    assert [line.tax_rate for line in lines] == [Decimal("19"), Decimal("7"), Decimal("19")]
    assert [line.quantity for line in lines] == [2, 1, 3]
    assert lines[0].unit_price == Decimal("49.90")
    assert lines[0].product_id == knife.pk
    assert lines[0].variant_id == variants[0].pk


def test_a_class_without_a_rate_in_the_country_is_taxed_at_zero():
    set_rate("DE", "standard", "19")
    variant = loaded(make_product(sku="X1"))[0]

    [line] = selectors.line_inputs([(variant, 1)], country="US")

    assert line.tax_rate == Decimal("0")


def test_category_ancestors_of_many_categories_take_one_query(django_assert_num_queries):
    root = CategoryFactory()
    chain = [root]
    for _ in range(6):
        chain.append(CategoryFactory(parent=chain[-1]))
    other = CategoryFactory()

    with django_assert_num_queries(1):
        found = selectors.category_ancestors([chain[-1].pk, chain[2].pk, other.pk])

    assert found[chain[-1].pk] == frozenset(c.pk for c in chain)
    assert found[chain[2].pk] == frozenset(c.pk for c in chain[:3])
    assert found[other.pk] == frozenset({other.pk})


# --- Promotions -----------------------------------------------------------------------------


def test_active_promotions_are_those_running_now_in_the_currency():
    now = timezone.now()
    category = CategoryFactory()
    product = make_product(sku="P1")
    running = make_promotion("Running", categories=[category], products=[product])
    make_promotion("Off", is_active=False)
    make_promotion("Later", starts_at=now + timedelta(hours=1))
    make_promotion("Over", ends_at=now - timedelta(seconds=1))
    make_promotion("Dollars", kind=Promotion.Kind.FIXED, value="2.00", currency="USD")
    euros = make_promotion("Euros", kind=Promotion.Kind.FIXED, value="2.00", currency="EUR")
    bundle = make_promotion(
        "3 for 2", kind=Promotion.Kind.BUY_X_PAY_Y, value="0", buy_quantity=3, pay_quantity=2
    )

    terms = selectors.active_promotions(currency="eur", now=now)

    assert [t.name for t in terms] == ["Running", "Euros", "3 for 2"]
    assert terms[0].id == running.pk
    assert terms[0].category_ids == frozenset({category.pk})
    assert terms[0].product_ids == frozenset({product.pk})
    assert terms[1].id == euros.pk
    assert terms[1].value == Decimal("2.00")
    assert (terms[2].id, terms[2].buy_quantity, terms[2].pay_quantity) == (bundle.pk, 3, 2)
    assert terms[2].product_ids == terms[2].category_ids == frozenset()


# --- price_items ----------------------------------------------------------------------------


def test_price_items_applies_promotion_voucher_tax_and_shipping():
    set_rate("DE", "standard", "19")
    home = CategoryFactory()
    kitchen = CategoryFactory(parent=home)
    pan = make_product(sku="PAN", price="40.00", category=kitchen)
    make_promotion("Home 10%", value="10", categories=[home])
    make_voucher("WELCOME10", value="10")
    variant = loaded(pan)[0]

    class Quote:
        method_id = 7
        name = "Standard"
        price = Decimal("5.95")

    breakdown = selectors.price_items(
        [(variant, 2)], currency="EUR", country="DE", voucher_code="welcome10", shipping=Quote()
    )

    [line] = breakdown.lines
    assert line.undiscounted == Decimal("80.00")
    assert line.promotion_discount == Decimal("8.00")
    assert line.promotion_name == "Home 10%"
    assert line.voucher_discount == Decimal("7.20")
    assert line.gross == Decimal("64.80")
    assert line.tax == Decimal("10.35")  # 64.80 * 19 / 119, gross prices
    assert breakdown.voucher_code == "WELCOME10"
    assert breakdown.shipping_gross == Decimal("5.95")
    assert breakdown.shipping_tax == Decimal("0.95")
    assert breakdown.total == Decimal("70.75")


def test_price_items_in_net_mode_adds_tax_on_top():
    set_rate("AT", "standard", "20")
    TaxSettings.objects.create(prices_include_tax=False)
    variant = loaded(make_product(sku="NET", price="10.00"))[0]

    breakdown = selectors.price_items([(variant, 3)], currency="EUR", country="AT")

    assert breakdown.prices_include_tax is False
    assert (breakdown.total_net, breakdown.tax, breakdown.total) == (
        Decimal("30.00"),
        Decimal("6.00"),
        Decimal("36.00"),
    )
