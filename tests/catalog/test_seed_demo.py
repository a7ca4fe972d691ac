"""`manage.py seed_demo`, catalog part: four categories, prod1..prod20 as one-variant
products with stock, a T-shirt in sizes and colours and a mug in colours with their
product types and attributes, all stocked in the one default warehouse; once."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    Category,
    Product,
    ProductType,
    ProductVariant,
)
from apps.inventory.models import Stock, StockMovement, Warehouse
from apps.orders import services as orders_services
from tests.catalog.factories import make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.users.factories import UserFactory

DEMO_SKUS = [f"prod{n}" for n in range(1, 21)]
TEE_SKUS = ["TEE-BLA-S", "TEE-BLA-M", "TEE-BLA-L", "TEE-WHI-S", "TEE-WHI-M", "TEE-WHI-L"]


def seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def catalog_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("  catalog ")]
    return line


def state() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "products": list(
            Product.objects.order_by("pk").values_list("pk", "name", "price", "updated_at")
        ),
        "variants": list(
            ProductVariant.objects.order_by("pk").values_list("pk", "sku", "price", "updated_at")
        ),
        "attributes": list(Attribute.objects.order_by("pk").values_list("pk", "slug")),
        "types": list(ProductType.objects.order_by("pk").values_list("pk", "slug")),
        "values": list(
            AssignedVariantAttribute.objects.order_by("pk").values_list("pk", "value_id")
        ),
        "stock": list(Stock.objects.order_by("pk").values_list("pk", "quantity")),
        "ledger": list(StockMovement.objects.order_by("pk").values_list("pk")),
        "warehouses": list(Warehouse.objects.order_by("pk").values_list("pk", "slug")),
    }


@pytest.fixture(autouse=True)
def _demo_password(settings: Any) -> None:
    # The users app seeds accounts in the same command; a fixed password keeps it quiet.
    settings.DEMO_PASSWORD = "given-demo-passphrase"


@pytest.mark.django_db
def test_seed_demo_creates_twenty_one_variant_products_with_stock(settings):
    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == (
        "  catalog   4 categories, prod1..prod20 (20 new), 2 products in variants (2 new)"
    )
    assert sorted(Category.objects.values_list("slug", "parent__slug", "is_active")) == [
        ("apparel", None, True),
        ("home", None, True),
        ("kitchen", "home", True),
        ("t-shirts", "apparel", True),
    ]
    variants = {
        v.sku: v for v in ProductVariant.objects.filter(sku__in=DEMO_SKUS).select_related("product")
    }
    assert sorted(variants) == sorted(DEMO_SKUS)
    assert {sku: stock_of(v.pk) for sku, v in variants.items()} == {
        f"prod{n}": 25 + 5 * n for n in range(1, 21)
    }
    assert all(v.product.variants.count() == 1 for v in variants.values())
    prod1 = variants["prod1"].product
    assert (prod1.name, prod1.price, prod1.currency, prod1.category.slug) == (
        "Classic T-shirt #1",
        Decimal("7.99"),
        settings.STORE_CURRENCY,
        "t-shirts",
    )
    assert variants["prod20"].price == Decimal("64.99")
    assert_ledger_matches()


@pytest.mark.django_db
def test_seed_demo_adds_a_t_shirt_in_sizes_and_colours_and_a_mug(settings):
    # when
    seed_demo()

    # then
    assert dict(Attribute.objects.values_list("slug", "input_type")) == {
        "size": "choice",
        "colour": "choice",
        "material": "text",
        "capacity": "number",
    }
    tee_type = ProductType.objects.get(slug="t-shirt")
    assert sorted(tee_type.variant_attributes.values_list("slug", flat=True)) == [
        "colour",
        "size",
    ]
    tee = Product.objects.get(name="Organic T-shirt")
    assert (tee.product_type, tee.category.slug, tee.price) == (
        tee_type,
        "t-shirts",
        Decimal("19.90"),
    )
    assert list(tee.variants.values_list("sku", "name")) == [
        (sku, f"{sku[-1]} / {'Black' if 'BLA' in sku else 'White'}") for sku in TEE_SKUS
    ]
    assert dict(
        AssignedVariantAttribute.objects.filter(variant__sku="TEE-WHI-M").values_list(
            "attribute__slug", "value__slug"
        )
    ) == {"size": "m", "colour": "white"}
    assert list(
        AssignedProductAttribute.objects.filter(product=tee).values_list(
            "attribute__slug", "value__name"
        )
    ) == [("material", "Organic cotton")]
    mug = Product.objects.get(name="Enamel mug")
    assert dict(
        AssignedProductAttribute.objects.filter(product=mug).values_list(
            "attribute__slug", "value__name"
        )
    ) == {"material": "Enamelled steel", "capacity": "350 ml"}
    # one warehouse, no zones: it serves every destination
    (warehouse,) = Warehouse.objects.all()
    assert list(warehouse.shipping_zones.all()) == []
    assert set(Stock.objects.values_list("warehouse_id", flat=True)) == {warehouse.pk}
    assert stock_of(ProductVariant.objects.get(sku="TEE-BLA-L").pk) == 12
    assert_ledger_matches()


@pytest.mark.django_db
def test_the_seed_order_body_and_a_variant_sku_can_be_ordered():
    # given
    seed_demo()
    buyer = UserFactory(email="buyer@example.com")

    # when
    order, _ = orders_services.place_order(
        user=buyer,
        lines=[
            orders_services.OrderLine("prod1", 2),
            orders_services.OrderLine("TEE-BLA-M", 1),
        ],
        payment_token="tok_success",
    )

    # then
    assert sorted(order.items.values_list("sku", "variant_name", "quantity")) == [
        ("TEE-BLA-M", "M / Black", 1),
        ("prod1", "", 2),
    ]
    assert stock_of(ProductVariant.objects.get(sku="prod1").pk) == 28
    assert stock_of(ProductVariant.objects.get(sku="TEE-BLA-M").pk) == 11


@pytest.mark.django_db
def test_seed_demo_twice_creates_nothing_and_moves_no_stock():
    # given
    seed_demo()
    before = state()

    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == (
        "  catalog   4 categories, prod1..prod20 (0 new), 2 products in variants (0 new)"
    )
    assert state() == before


@pytest.mark.django_db
def test_seed_demo_leaves_an_existing_product_of_the_same_sku_alone():
    # given: someone already sells a PROD3 and a tee-bla-s (any letter case counts)
    existing = make_product(sku="PROD3", name="Real product", price="2.50", stock=1)
    make_product(sku="tee-bla-s", name="Their tee", stock=0)

    # when
    output = seed_demo()

    # then
    assert catalog_line(output) == (
        "  catalog   4 categories, prod1..prod20 (19 new), 2 products in variants (1 new)"
    )
    existing.refresh_from_db()
    assert (existing.name, existing.price, existing.category) == (
        "Real product",
        Decimal("2.50"),
        None,
    )
    assert stock_of(existing.variant.pk) == 1
    assert StockMovement.objects.filter(variant=existing.variant).count() == 1
    assert not Product.objects.filter(name="Organic T-shirt").exists()
