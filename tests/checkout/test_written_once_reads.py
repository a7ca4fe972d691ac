"""The reads of every priced cart, written out once for PostgreSQL, return what the ORM's
querysets return: the same rows, in the same order, with the same related rows loaded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Model

from apps.catalog.models import Category, ProductType
from apps.checkout import locks
from apps.checkout import selectors as checkout_selectors
from apps.checkout.exceptions import CartNotFound
from apps.checkout.models import Cart, CartLine
from apps.inventory import selectors as inventory_selectors
from apps.inventory.models import Stock, Warehouse
from apps.pricing import selectors as pricing_selectors
from apps.pricing.models import Voucher, VoucherUse
from apps.shipping import selectors as shipping_selectors
from apps.shipping.models import ShippingMethod
from tests.catalog.factories import make_product
from tests.checkout.helpers import add, new_cart
from tests.pricing.factories import make_voucher
from tests.shipping.factories import make_method, make_zone
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def fields(instance: Model | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_a_carts_lines_come_with_their_variant_product_type_and_category(
    api_client, django_assert_num_queries
):
    shirts = Category.objects.create(name="Shirts", slug="shirts")
    typed = ProductType.objects.create(name="Books", slug="books", tax_class="reduced")
    plain = make_product(sku="PLAIN", stock=5, price="3.50")
    shirt = make_product(sku="SHIRT", stock=5, price="19.99", category=shirts)
    book = make_product(sku="BOOK", stock=5, price="7.25", product_type=typed)
    token = new_cart(api_client)["token"]
    for sku, quantity in (("BOOK", 2), ("PLAIN", 1), ("SHIRT", 3)):
        assert add(api_client, token, sku, quantity).status_code == 200
    cart = Cart.objects.get(token=token)

    with django_assert_num_queries(1):
        lines = checkout_selectors._lines(cart)
        related = [
            (
                fields(line.variant),
                fields(line.variant.product),
                fields(line.variant.product.product_type),
                fields(line.variant.product.category),
            )
            for line in lines
        ]
    expected = list(
        CartLine.objects.filter(cart=cart)
        .select_related("variant__product__product_type", "variant__product__category")
        .order_by("created_at", "pk")
    )

    assert [fields(line) for line in lines] == [fields(line) for line in expected]
    assert related == [
        (
            fields(line.variant),
            fields(line.variant.product),
            fields(line.variant.product.product_type),
            fields(line.variant.product.category),
        )
        for line in expected
    ]
    assert [line.variant.sku for line in lines] == ["BOOK", "PLAIN", "SHIRT"]
    assert {p.pk for p in (plain, shirt, book)} == {line.variant.product_id for line in lines}


def test_the_warehouses_serving_a_destination_and_their_stock():
    germany = make_zone("germany", ["DE"])
    france = make_zone("france", ["FR"])
    everywhere = Warehouse.objects.create(name="Anywhere", slug="anywhere", priority=5)
    berlin = Warehouse.objects.create(name="Berlin", slug="berlin", priority=1)
    berlin.shipping_zones.set([germany])
    paris = Warehouse.objects.create(name="Paris", slug="paris", priority=1)
    paris.shipping_zones.set([france])
    closed = Warehouse.objects.create(name="Closed", slug="closed", priority=0, is_active=False)
    product = make_product(sku="MUG", stock=4)
    for warehouse, quantity in ((berlin, 3), (paris, 7), (closed, 11)):
        Stock.objects.update_or_create(
            warehouse=warehouse, variant=product.variant, defaults={"quantity": quantity}
        )

    for country in ("DE", "de", "FR", "US", None, ""):
        found = inventory_selectors.warehouses_for(country)
        expected = Warehouse.objects.filter(inventory_selectors.serving(country)).order_by(
            "priority", "pk"
        )
        assert [fields(w) for w in found] == [fields(w) for w in expected], country
    assert everywhere in inventory_selectors.warehouses_for("US")
    assert berlin not in inventory_selectors.warehouses_for("FR")

    variant_ids = [product.variant.pk, 10**9]
    for warehouse_ids in (None, [berlin.pk, paris.pk], [closed.pk], []):
        rows = Stock.objects.filter(variant_id__in=variant_ids)
        if warehouse_ids is not None:
            rows = rows.filter(warehouse_id__in=warehouse_ids)
        expected_totals = {row.variant_id: 0 for row in rows}
        for row in rows:
            expected_totals[row.variant_id] += row.quantity
        assert (
            inventory_selectors.stock_by_variant(variant_ids, warehouse_ids=warehouse_ids)
            == expected_totals
        ), warehouse_ids


def test_the_shipping_candidates_come_with_their_zone_and_bands_in_order():
    germany = make_zone("germany", ["DE", "AT"])
    make_zone("france", ["FR"])
    flat = make_method(germany, "Flat", price="4.90")
    weight = make_method(
        germany,
        "By weight",
        kind="weight",
        bands=[("1000", None, "9.00"), ("0", "1000", "5.00"), ("0", "500", "4.00")],
    )
    make_method(germany, "Off", price="1.00", is_active=False)
    make_method(germany, "Francs", price="5.00", currency="CHF")

    for country, currency, method_id in (
        ("DE", "EUR", None),
        ("at", "eur", None),
        ("FR", "EUR", None),
        ("DE", "EUR", weight.pk),
        ("DE", "CHF", None),
    ):
        found = shipping_selectors._candidates(
            country=country, currency=currency, method_id=method_id
        )
        expected = shipping_selectors._with_bands(
            ShippingMethod.objects.filter(
                shipping_selectors._serving(country.upper()),
                is_active=True,
                currency=currency.upper(),
                **({"pk": method_id} if method_id else {}),
            )
        )
        by_id = {method.pk: method for method in expected}
        assert sorted(m.pk for m, _ in found) == sorted(by_id), (country, currency)
        for method, bands in found:
            assert fields(method) == fields(by_id[method.pk])
            assert fields(method.zone) == fields(by_id[method.pk].zone)
            assert [fields(b) for b in bands] == [fields(b) for b in by_id[method.pk].bands.all()]
    # Overlapping bands: the first by lower bound, then id, covering 400 g sets the price.
    quotes = shipping_selectors.quotes(
        country="DE", currency="EUR", weight_grams=400, subtotal=Decimal("0")
    )
    assert [(q.method_id, str(q.price)) for q in quotes] == [(flat.pk, "4.90"), (weight.pk, "5.00")]


def test_a_vouchers_row_targets_and_open_uses():
    shirts = Category.objects.create(name="Shirts", slug="shirts")
    product = make_product(sku="TEE")
    voucher = make_voucher("SAVE5", products=[product], categories=[shirts])
    bare = make_voucher("BARE")
    buyer, other = UserFactory(), UserFactory()
    VoucherUse.objects.create(voucher=voucher, user=buyer, reference="order:1")
    VoucherUse.objects.create(voucher=voucher, user=buyer, reference="order:2")
    VoucherUse.objects.create(voucher=voucher, user=other, reference="order:3")
    VoucherUse.objects.filter(reference="order:2").update(released_at="2026-01-01T00:00:00Z")

    for code in ("SAVE5", "BARE", "NOPE"):
        found = pricing_selectors._voucher_by_code(code)
        assert fields(found) == fields(Voucher.objects.filter(code=code).first()), code
    terms = pricing_selectors.terms_of(voucher)
    assert (terms.product_ids, terms.category_ids) == ({product.pk}, {shirts.pk})
    assert (pricing_selectors.terms_of(bare).product_ids, terms.code) == (frozenset(), "SAVE5")
    assert pricing_selectors.open_uses(voucher=voucher, user=buyer) == 1
    assert pricing_selectors.open_uses(voucher=voucher, user=other) == 1
    assert pricing_selectors.open_uses(voucher=bare, user=buyer) == 0


def test_a_cart_by_token_and_locked_is_the_row_the_orm_reads(api_client, settings):
    token = new_cart(api_client)["token"]
    cart = Cart.objects.get(token=token)

    assert fields(checkout_selectors.cart_for(token=token, user=None)) == fields(cart)
    with transaction.atomic():
        assert fields(locks.cart_for_update(cart.pk)) == fields(cart)
    with pytest.raises(CartNotFound), transaction.atomic():
        locks.cart_for_update(10**9)
    # Idle past CART_IDLE_SECONDS: gone, as the ORM's filter has it.
    Cart.objects.filter(pk=cart.pk).update(
        updated_at=checkout_selectors.idle_cutoff() - timedelta(seconds=1)
    )
    with pytest.raises(CartNotFound):
        checkout_selectors.cart_for(token=token, user=None)
