"""ETag, Last-Modified and Cache-Control on public catalog reads; conditional GETs answered
304 from the cache entry, without a query or a render; the ETag changes with every change
that retires the entry (price, stock, variants, values, media)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils.http import http_date, parse_http_date

from apps.catalog import cache as catalog_cache
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.test_cache import CHANGES, LIST_CHANGES, computes
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = {"detail": "/api/products/mug", "list": "/api/products?page_size=5"}


@pytest.mark.parametrize("kind", list(PATHS))
def test_a_public_read_carries_its_validators_and_caching_headers(
    api_client: Any, kind: str, settings: Any
) -> None:
    settings.PUBLIC_READ_MAX_AGE_SECONDS = 45
    make_product(sku="mug", stock=3)

    response = api_client.get(PATHS[kind])

    assert response.status_code == 200
    assert response["ETag"].startswith('"')
    assert len(response["ETag"]) == 34
    assert abs(parse_http_date(response["Last-Modified"]) - time.time()) < 5
    assert response["Cache-Control"] == "public, max-age=45"
    assert response["Vary"] == "Authorization"
    # The same entry, the same validators; the body is JSON without the stamp line.
    again = api_client.get(PATHS[kind])
    assert (again["ETag"], again["Last-Modified"]) == (response["ETag"], response["Last-Modified"])
    assert again.content == response.content
    assert response.content[:1] == b"{"


@pytest.mark.parametrize("kind", list(PATHS))
def test_if_none_match_is_answered_304_from_the_cache_without_a_query_or_a_render(
    api_client: Any, kind: str, django_assert_num_queries: Any
) -> None:
    make_product(sku="mug", stock=3)
    first = api_client.get(PATHS[kind])
    name = catalog_cache.DETAIL if kind == "detail" else catalog_cache.LIST
    renders = computes(name)

    with django_assert_num_queries(0):
        exact = api_client.get(PATHS[kind], HTTP_IF_NONE_MATCH=first["ETag"])
        among = api_client.get(PATHS[kind], HTTP_IF_NONE_MATCH=f'"other", W/{first["ETag"]}')
        star = api_client.get(PATHS[kind], HTTP_IF_NONE_MATCH="*")
        other = api_client.get(PATHS[kind], HTTP_IF_NONE_MATCH='"other"')

    assert [exact.status_code, among.status_code, star.status_code] == [304, 304, 304]
    assert exact.content == b""
    assert exact["ETag"] == first["ETag"]
    assert exact["Cache-Control"] == first["Cache-Control"]
    assert other.status_code == 200
    assert other.content == first.content
    assert computes(name) == renders


def test_if_modified_since_is_answered_304_unless_the_entry_is_newer(api_client: Any) -> None:
    make_product(sku="mug", stock=3)
    first = api_client.get("/api/products/mug")
    modified = parse_http_date(first["Last-Modified"])

    same = api_client.get("/api/products/mug", HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    before = api_client.get("/api/products/mug", HTTP_IF_MODIFIED_SINCE=http_date(modified - 60))
    garbled = api_client.get("/api/products/mug", HTTP_IF_MODIFIED_SINCE="yesterday-ish")
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    both = api_client.get(
        "/api/products/mug",
        HTTP_IF_NONE_MATCH='"other"',
        HTTP_IF_MODIFIED_SINCE=first["Last-Modified"],
    )

    assert same.status_code == 304
    assert before.status_code == 200
    assert before.content == first.content
    assert garbled.status_code == 200
    assert both.status_code == 200


def test_head_is_conditional_too_and_writes_are_not(api_client: Any) -> None:
    make_product(sku="mug", stock=3)
    etag = api_client.get("/api/products/mug")["ETag"]

    head = api_client.head("/api/products/mug", HTTP_IF_NONE_MATCH=etag)

    assert head.status_code == 304


def test_an_unknown_product_is_still_404_whatever_the_validators(api_client: Any) -> None:
    response = api_client.get("/api/products/nope", HTTP_IF_NONE_MATCH="*")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_staff_reads_are_not_publicly_cacheable(api_client: Any, client_for: Any) -> None:
    make_product(sku="mug", stock=3)
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    etag = api_client.get("/api/products/mug")["ETag"]

    response = manager.get("/api/products/mug", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert "public" not in response.get("Cache-Control", "")


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_that_shows_in_the_detail_changes_its_etag(
    api_client: Any,
    client_for: Any,
    two_products: Any,
    change: str,
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    tee, _mug = two_products
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    make_change, shows_it = CHANGES[change]
    old = api_client.get(f"/api/products/{tee.pk}")
    old_list = api_client.get("/api/products")
    assert (
        api_client.get(f"/api/products/{tee.pk}", HTTP_IF_NONE_MATCH=old["ETag"]).status_code == 304
    )

    make_change(manager, tee)

    fresh = api_client.get(f"/api/products/{tee.pk}", HTTP_IF_NONE_MATCH=old["ETag"])
    assert fresh.status_code == 200
    assert shows_it(fresh.json()), fresh.json()
    assert fresh["ETag"] != old["ETag"]
    again = api_client.get(f"/api/products/{tee.pk}", HTTP_IF_NONE_MATCH=fresh["ETag"])
    assert again.status_code == 304
    # List rows show some changes only: the page is rendered anew either way, and its ETag
    # (the digest of its bytes) changes exactly when they do.
    listing = api_client.get("/api/products", HTTP_IF_NONE_MATCH=old_list["ETag"])
    assert listing.status_code == (200 if change in LIST_CHANGES else 304)
