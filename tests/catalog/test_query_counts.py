"""Query counts stay constant in the number of variants, attribute values and images: the
public detail (a cache miss), the staff detail, a variant, the public and staff list
pages, and order placement each cost as many queries for a product in one variant as for
one in ten variants with five attribute values each and three images."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.catalog import services
from apps.catalog.models import Attribute, Product, ProductMedia, ProductType
from ecommerce.api.permissions import Role
from tests.users.factories import UserFactory

PRODUCT_ATTRIBUTES = ("brand", "fabric", "fit", "care", "origin")
VARIANT_ATTRIBUTES = ("colour", "size", "sleeve", "neck", "length")
CHOICES = 10
IMAGES = 3


@pytest.fixture
def wide_type() -> ProductType:
    """A type with five product and five variant attributes, ten choices each."""

    def attribute(slug: str) -> Attribute:
        return services.create_attribute(
            name=slug.title(),
            slug=slug,
            values=[services.ValueSpec(f"{slug} {n}", slug=f"v{n}") for n in range(CHOICES)],
        )

    return services.create_product_type(
        name="Wide",
        slug="wide",
        product_attributes=[attribute(slug) for slug in PRODUCT_ATTRIBUTES],
        variant_attributes=[attribute(slug) for slug in VARIANT_ATTRIBUTES],
    )


def make_wide(prefix: str, variants: int, product_type: ProductType | None) -> Product:
    """A product in `variants` variants; with a type, 5 values on the product and on each
    variant, and IMAGES images (rows made directly: no file is read to serialize them)."""
    typed = product_type is not None
    product = services.create_product(
        name=f"Wide {prefix}",
        product_type=product_type,
        attributes=dict.fromkeys(PRODUCT_ATTRIBUTES, "v1") if typed else {},
        variants=[
            services.VariantSpec(
                sku=f"{prefix}-{n}",
                price=Decimal(10 + n),
                attributes=dict.fromkeys(VARIANT_ATTRIBUTES, f"v{n}") if typed else {},
                initial_stock=5,
            )
            for n in range(variants)
        ],
    )
    if typed:
        ProductMedia.objects.bulk_create(
            ProductMedia(
                product=product,
                image=f"products/{product.pk}/{n}.png",
                alt=f"image {n}",
                sort_order=n,
                content_type="image/png",
                width=40,
                height=30,
                size_bytes=100,
                thumbnails={"160": f"products/{product.pk}/{n}_160.webp"},
            )
            for n in range(IMAGES)
        )
    return product


def queries(request: Callable[[], Any]) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code in (200, 201), response.content
    return len(captured.captured_queries), response


@pytest.fixture
def small_and_wide(wide_type: ProductType) -> tuple[Product, Product]:
    """One product in one plain variant, one in ten variants x 5 values with 3 images."""
    return make_wide("one", 1, None), make_wide("ten", 10, wide_type)


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["id", "sku"])
def test_the_public_detail_on_a_miss_costs_the_same_whatever_the_product_holds(
    api_client, small_and_wide, by
):
    # given
    small, wide = small_and_wide

    def path(product: Product, prefix: str) -> str:
        return f"/api/products/{product.pk if by == 'id' else f'{prefix}-0'}"

    # when
    small_count, _ = queries(lambda: api_client.get(path(small, "one")))
    wide_count, response = queries(lambda: api_client.get(path(wide, "ten")))

    # then: product with category and type, variants with stock, their values, its
    # values, its media (and the SKU's product id first)
    assert small_count == wide_count == (5 if by == "id" else 6)
    body = response.json()
    assert len(body["variants"]) == 10
    assert {len(variant["attributes"]) for variant in body["variants"]} == {5}
    assert (len(body["attributes"]), len(body["media"])) == (5, IMAGES)


@pytest.mark.django_db
def test_the_staff_detail_costs_the_same_whatever_the_product_holds(client_for, small_and_wide):
    # given
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    assert manager.get("/api/users/me").status_code == 200  # the token's user is cached

    # when
    small_count, _ = queries(lambda: manager.get("/api/products/one-0"))
    wide_count, response = queries(lambda: manager.get("/api/products/ten-0"))

    # then: as the public detail (user and roles come from the cache)
    assert small_count == wide_count == 5
    assert len(response.json()["variants"]) == 10


@pytest.mark.django_db
def test_a_variant_costs_the_same_whatever_its_values(client_for, small_and_wide):
    # given
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    assert manager.get("/api/users/me").status_code == 200  # the token's user is cached

    # when
    small_count, _ = queries(lambda: manager.get("/api/variants/one-0"))
    wide_count, response = queries(lambda: manager.get("/api/variants/ten-3"))

    # then: the variant with its product and stock, its values (the user is cached)
    assert small_count == wide_count == 2
    assert len(response.json()["attributes"]) == 5


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["public", "staff"])
def test_a_list_page_costs_the_same_whatever_its_products_hold(
    api_client, client_for, wide_type, kind
):
    # given: five plain products, then the same five grown to ten variants each
    client: APIClient = (
        api_client if kind == "public" else client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    )
    assert client.get("/api/categories").status_code == 200  # a token's user is now cached
    for n in range(5):
        make_wide(f"plain{n}", 1, None)
    plain_count, plain = queries(lambda: client.get("/api/products?page_size=5"))
    for n in range(5):
        make_wide(f"wide{n}", 10, wide_type)

    # when: a page of the five wide ones ("Wide wide*" sort after "Wide plain*")
    wide_count, wide = queries(lambda: client.get("/api/products?page_size=5&ordering=-name"))

    # then
    assert plain.json()["count"] == 5
    assert wide.json()["count"] == 10
    assert {row["sku"].split("-")[0] for row in wide.json()["results"]} == {
        f"wide{n}" for n in range(5)
    }
    assert wide_count == plain_count


@pytest.mark.django_db
def test_placing_an_order_costs_the_same_for_one_line_or_ten(client_for, small_and_wide):
    # given
    buyer = client_for(UserFactory(roles=[Role.CUSTOMER]))

    def order(*skus: str) -> Callable[[], Any]:
        body = {
            "items": [{"id": sku, "quantity": 1} for sku in skus],
            "payment_token": "tok_success",
        }
        return lambda: buyer.post("/api/orders", body, format="json")

    # Store-wide reads cached on first use (the tax settings) count for neither order.
    queries(order("one-0"))

    # when: one line of the one-variant product; one line of each of the ten variants
    one_count, one = queries(order("one-0"))
    ten_count, ten = queries(order(*(f"ten-{n}" for n in range(10))))

    # then
    assert len(one.json()["items"]) == 1
    assert len(ten.json()["items"]) == 10
    assert ten_count == one_count
