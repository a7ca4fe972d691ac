"""Cache-aside reads of products: fresh after commit, untouched by rollback, herd-proof,
still answering when Redis is down or hangs, and each change retiring exactly the entries
that show it (the product's detail, whatever it is looked up by, and the list pages) while
other products' entries survive."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import transaction
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from apps.catalog import cache as catalog_cache
from apps.catalog import services
from apps.inventory import services as inventory_services
from ecommerce import caching
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.servers import free_port, redis_server, silent_tcp_server
from tests.users.factories import UserFactory


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def computes(cache_name: str = catalog_cache.DETAIL) -> float:
    return counter("ecommerce_cache_computes_total", cache=cache_name)


@pytest.mark.django_db(transaction=True)
def test_detail_is_read_once_then_served_from_cache(api_client, django_assert_num_queries):
    make_product(sku="mug", stock=3, price="9.50")

    # the SKU's product id, then the product, its variants, their values, its values, media
    with django_assert_num_queries(6):
        first = api_client.get("/api/products/mug")
    with django_assert_num_queries(0):
        second = api_client.get("/api/products/MUG")
    with django_assert_num_queries(0):  # one entry per product, whatever looks it up
        by_id = api_client.get(f"/api/products/{first.json()['id']}")

    assert first.status_code == second.status_code == by_id.status_code == 200
    assert first.content == second.content == by_id.content
    assert first.json()["price"] == "9.50"
    assert first.json()["currency"] == "EUR"


@pytest.mark.django_db(transaction=True)
def test_list_page_is_two_queries_cold_and_none_warm(api_client, django_assert_num_queries):
    for n in range(5):
        make_product(sku=f"item{n}", stock=n)

    with django_assert_num_queries(2):  # count + page, categories joined
        cold = api_client.get("/api/products?page_size=3&ordering=-price")
    with django_assert_num_queries(0):
        warm = api_client.get("/api/products?page_size=3&ordering=-price")

    assert cold.content == warm.content
    assert cold.json()["count"] == 5
    assert len(cold.json()["results"]) == 3
    assert cold.json()["next"] == "/api/products?ordering=-price&page=2&page_size=3"


@pytest.mark.django_db(transaction=True)
def test_a_committed_price_change_is_visible_to_the_next_read(api_client, client_for):
    make_product(sku="lamp", price="20.00")
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    assert api_client.get("/api/products/lamp").json()["price"] == "20.00"
    assert api_client.get("/api/products").json()["results"][0]["price"] == "20.00"

    response = manager.patch("/api/products/lamp", {"price": "25.00"}, format="json")

    assert response.status_code == 200
    assert api_client.get("/api/products/lamp").json()["price"] == "25.00"
    assert api_client.get("/api/products/LAMP").json()["price"] == "25.00"
    assert api_client.get("/api/products").json()["results"][0]["price"] == "25.00"


@pytest.mark.django_db(transaction=True)
def test_a_committed_reservation_is_visible_to_the_next_read(api_client):
    product = make_product(sku="cup", stock=4)
    assert api_client.get("/api/products/cup").json()["stock"] == 4

    inventory_services.allocate(
        lines=[inventory_services.StockLine(product.variant.pk, 3)], reference="o-1"
    )

    assert api_client.get("/api/products/cup").json()["stock"] == 1
    assert api_client.get(f"/api/products/{product.pk}").json()["stock"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_invalidates_nothing(api_client):
    product = make_product(sku="vase", price="30.00")
    cached = api_client.get("/api/products/vase").content
    generation_key = catalog_cache.detail_generation_key(product.pk)
    generation_before = caching.current_generation("test", generation_key)

    def change_then_fail() -> None:
        with transaction.atomic():
            services.update_product(product=product, price=Decimal("31.00"))
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert caching.current_generation("test", generation_key) == generation_before
    assert caching.Stamped.of(caching._Store().get(catalog_cache.detail_key(product.pk))).body == (
        cached
    )
    before = computes()
    assert api_client.get("/api/products/vase").content == cached
    assert computes() == before  # still a hit


@pytest.mark.django_db
def test_a_reader_that_raced_a_writer_cannot_store_the_old_value():
    """The reader took the generation before the writer committed; its fill is refused."""
    store = caching._Store()
    key, generation_key = "race:key", "race:gen"
    generation = store.generation(generation_key)
    caching.invalidate(name="test", generation_keys=[generation_key], keys=[key])

    store.fill(generation_key, key, generation, b"stale", 60)

    assert store.get(key) is None
    store.fill(generation_key, key, store.generation(generation_key), b"fresh", 60)
    assert store.get(key) == b"fresh"


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_on_a_cold_product_read_the_database_at_most_twice(
    live_server,
):
    make_product(sku="hot", stock=7)
    url = f"{live_server.url}/api/products/hot"
    before = computes()

    def fetch(_: int) -> tuple[int, bytes]:
        response = httpx.get(url, timeout=10)
        return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(fetch, range(50)))

    database_reads = computes() - before
    print(f"\nherd: 50 concurrent cold requests -> {database_reads:.0f} database read(s)")
    assert {status for status, _ in results} == {200}
    assert len({body for _, body in results}) == 1
    assert 1 <= database_reads <= 2


@pytest.mark.django_db(transaction=True)
def test_reads_fall_back_to_the_database_when_redis_dies(api_client, settings, caplog):
    make_product(sku="tea", stock=2)
    with redis_server() as server:
        settings.CACHES = server.cache_settings(timeout_seconds=0.25)
        assert api_client.get("/api/products/tea").status_code == 200  # warm
        server.kill()
        # a read by SKU touches the cache first for the SKU's product id
        errors_before = counter(
            "ecommerce_cache_requests_total", cache=catalog_cache.SKU, result="error"
        )
        caplog.set_level(logging.WARNING, logger="ecommerce.caching")

        started = time.monotonic()
        first = api_client.get("/api/products/tea")
        second = api_client.get("/api/products/tea")
        elapsed = time.monotonic() - started

    assert first.status_code == second.status_code == 200
    assert first.json()["sku"] == "tea"
    assert elapsed < 1.0
    warnings = [
        r
        for r in caplog.records
        if r.name == "ecommerce.caching" and "cache_unavailable" in str(r.msg)
    ]
    assert len(warnings) == 1  # the second read bypasses the dead cache without a new warning
    assert counter("ecommerce_cache_requests_total", cache=catalog_cache.SKU, result="error") == (
        errors_before + 1
    )


@pytest.mark.django_db(transaction=True)
def test_reads_answer_within_the_timeout_when_redis_hangs(api_client, settings):
    make_product(sku="jam", stock=1)
    with silent_tcp_server() as port:
        settings.CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
            }
        }
        started = time.monotonic()
        response = api_client.get("/api/products/jam")
        elapsed = time.monotonic() - started
        listing = api_client.get("/api/products")

    assert response.status_code == 200
    assert json.loads(response.content)["sku"] == "jam"
    assert elapsed < 1.0
    assert listing.status_code == 200
    assert listing.json()["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_stray_query_parameters_never_reach_links_served_from_the_cache(api_client):
    for n in range(3):
        make_product(sku=f"link{n}")

    first = api_client.get("/api/products/?page_size=1&utm_source=newsletter&x=<b>")
    second = api_client.get("/api/products?page_size=1")

    assert first.json()["next"] == "/api/products/?page=2&page_size=1"
    assert second.content == first.content  # one cache entry: the stray parameters are not keyed


@pytest.mark.django_db(transaction=True)
def test_an_invalidation_redis_missed_is_replayed_before_the_next_read(api_client, settings):
    """Redis unreachable while a price changes, then back with the old value still cached:
    the process replays the missed invalidation before it reads, so the old price is gone."""
    product = make_product(sku="kettle", price="20.00")
    with redis_server() as server:
        settings.CACHES = server.cache_settings(timeout_seconds=0.25)
        assert api_client.get("/api/products/kettle").json()["price"] == "20.00"  # cached
        reachable = settings.CACHES
        settings.CACHES = {"default": {**reachable["default"], "LOCATION": dead_redis_url()}}
        errors_before = counter("ecommerce_cache_invalidation_errors_total", cache="product_detail")

        services.update_product(product=product, price=Decimal("25.00"))

        assert counter("ecommerce_cache_invalidation_errors_total", cache="product_detail") == (
            errors_before + 1
        )
        settings.CACHES = reachable  # Redis is back, holding the 20.00 page
        assert server_holds_price(server, product.pk, "20.00")
        settings.CACHE_BYPASS_SECONDS = 0.0
        caching._bypass_until = 0.0  # the outage is over

        detail = api_client.get("/api/products/kettle")
        listing = api_client.get("/api/products")

    assert detail.json()["price"] == "25.00"
    assert listing.json()["results"][0]["price"] == "25.00"
    assert not caching._missed


@pytest.mark.django_db(transaction=True)
def test_invalidations_are_kept_in_order_while_redis_stays_down(api_client, settings, caplog):
    product = make_product(sku="teapot", price="30.00")
    with silent_tcp_server() as port:
        settings.CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
            }
        }
        caplog.set_level(logging.ERROR, logger="ecommerce.caching")

        services.update_product(product=product, price=Decimal("31.00"))
        services.update_product(product=product, name="Teapot II")

    # Only the first invalidation tried the hung Redis; the second found it bypassed.
    failures = [r for r in caplog.records if "cache_invalidation_failed" in str(r.msg)]
    assert len(failures) == 1
    assert [name for name, _, _ in caching._missed] == [catalog_cache.DETAIL] * 2
    assert caching._missed[0][1] == (
        catalog_cache.LIST_GENERATION_KEY,
        catalog_cache.detail_generation_key(product.pk),
    )
    assert caching._missed[0][2] == (catalog_cache.detail_key(product.pk),)


def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def server_holds_price(server: Any, product_id: int, price: str) -> bool:
    import redis

    client = redis.Redis(port=server.port)
    [key] = client.keys(f"*{catalog_cache.detail_key(product_id)}")
    return json.loads(caching.Stamped.of(client.get(key)).body)["price"] == price


# --- Each change retires exactly the entries that show it -------------------------------------


def cached(key: str) -> bytes | None:
    return caching._Store().get(key)


def png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (30, 20), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def change_variant_price(client: Any, tee: Any) -> None:
    response = client.patch("/api/variants/TEE-WHT-L", {"price": "15.00"}, format="json")
    assert response.status_code == 200, response.content


def restock(client: Any, tee: Any) -> None:
    white = tee.variants.get(sku="TEE-WHT-L")
    inventory_services.restock(variant_id=white.pk, quantity=2)


def place_order(client: Any, tee: Any) -> None:
    buyer = APIClient()
    buyer.force_authenticate(UserFactory(roles=[Role.CUSTOMER]))
    response = buyer.post(
        "/api/orders",
        {"items": [{"id": "tee-blk-m", "quantity": 1}], "payment_token": "tok_success"},
        format="json",
    )
    assert response.status_code == 201, response.content


def change_attribute_value(client: Any, tee: Any) -> None:
    response = client.patch("/api/variants/TEE-BLK-M", {"attributes": {"size": "s"}}, format="json")
    assert response.status_code == 200, response.content


def change_product_attribute(client: Any, tee: Any) -> None:
    response = client.patch(
        f"/api/products/{tee.pk}", {"attributes": {"material": "Linen"}}, format="json"
    )
    assert response.status_code == 200, response.content


def add_variant(client: Any, tee: Any) -> None:
    response = client.post(
        "/api/products/TEE-BLK-M/variants",
        {"sku": "TEE-BLK-S", "price": "12.00", "attributes": {"size": "s"}},
        format="json",
    )
    assert response.status_code == 201, response.content


def add_media(client: Any, tee: Any) -> None:
    media = pytest.importorskip("apps.catalog.media")
    from django.core.files.uploadedfile import SimpleUploadedFile

    media.add_media(product=tee, upload=SimpleUploadedFile("a.png", png(), "image/png"))


def deactivate_variant(client: Any, tee: Any) -> None:
    response = client.patch("/api/variants/TEE-WHT-L", {"is_active": False}, format="json")
    assert response.status_code == 200, response.content


CHANGES = {
    "variant-price": (change_variant_price, lambda d: d["variants"][1]["price"] == "15.00"),
    "restock": (restock, lambda d: d["variants"][1]["stock"] == 2),
    "order": (place_order, lambda d: d["variants"][0]["stock"] == 3),
    "variant-attribute": (
        change_attribute_value,
        lambda d: [a["slug"] for a in d["variants"][0]["attributes"]] == ["black", "s"],
    ),
    "product-attribute": (
        change_product_attribute,
        lambda d: d["attributes"][0]["value"] == "Linen",
    ),
    "variant-added": (add_variant, lambda d: len(d["variants"]) == 3),
    "media-added": (add_media, lambda d: len(d["media"]) == 1),
    "variant-deactivated": (deactivate_variant, lambda d: len(d["variants"]) == 1),
}


LIST_CHANGES = {
    "variant-price",
    "restock",
    "order",
    "variant-added",
    "variant-deactivated",
    "media-added",  # the row shows the first image's thumbnail
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_retires_its_products_detail_and_the_lists_but_no_other_detail(
    api_client, client_for, two_products, change, settings, tmp_path
):
    # given: both details cached (by id and by each SKU), two list pages cached
    settings.MEDIA_ROOT = tmp_path / "media"
    tee, mug = two_products
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    make_change, shows_it = CHANGES[change]
    for path in ("TEE-BLK-M", "tee-wht-l", str(tee.pk), "MUG"):
        assert api_client.get(f"/api/products/{path}").status_code == 200
    listing = api_client.get("/api/products").content
    api_client.get("/api/products?page_size=1")
    mug_entry = cached(catalog_cache.detail_key(mug.pk))
    assert mug_entry is not None
    assert cached(catalog_cache.detail_key(tee.pk)) is not None
    list_generation = caching.current_generation("test", catalog_cache.LIST_GENERATION_KEY)

    # when
    make_change(manager, tee)

    # then: the tee's one detail entry and every list page are retired...
    assert cached(catalog_cache.detail_key(tee.pk)) is None
    assert caching.current_generation("test", catalog_cache.LIST_GENERATION_KEY) != (
        list_generation
    )
    # ...the mug's entry survives and is served without a database read...
    assert cached(catalog_cache.detail_key(mug.pk)) == mug_entry
    detail_computes = computes()
    assert api_client.get("/api/products/mug").content == caching.Stamped.of(mug_entry).body
    assert computes() == detail_computes
    # ...and every lookup of the tee shows the change, from one fresh entry
    bodies = [
        api_client.get(f"/api/products/{path}").json()
        for path in ("TEE-BLK-M", str(tee.pk), "tee-blk-m")
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert shows_it(bodies[0]), bodies[0]
    assert computes() == detail_computes + 1
    list_computes = computes(catalog_cache.LIST)
    fresh_listing = api_client.get("/api/products").content
    # list rows show the price, stock and thumbnail (not attribute values)
    assert (fresh_listing != listing) == (change in LIST_CHANGES)
    assert computes(catalog_cache.LIST) == list_computes + 1


@pytest.mark.django_db(transaction=True)
def test_a_change_to_another_product_keeps_this_ones_entry(api_client, client_for, two_products):
    # given
    tee, mug = two_products
    api_client.get("/api/products/TEE-BLK-M")
    entry = cached(catalog_cache.detail_key(tee.pk))
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))

    # when: the mug's price and stock change
    manager.patch("/api/products/MUG", {"price": "11.00"}, format="json")
    inventory_services.restock(variant_id=mug.variant.pk, quantity=1)

    # then
    assert entry is not None
    assert cached(catalog_cache.detail_key(tee.pk)) == entry
    assert cached(catalog_cache.detail_key(mug.pk)) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["product", "variant"])
def test_a_sku_cached_as_unknown_is_known_right_after_it_is_created(
    api_client, client_for, two_products, how
):
    # given: the SKU was looked up, and its absence cached
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    for _ in range(2):
        assert api_client.get("/api/products/new-1").status_code == 404
    assert cached(catalog_cache.sku_key("NEW-1")) == caching.ABSENT

    # when
    if how == "product":
        response = manager.post(
            "/api/products", {"sku": "New-1", "name": "New", "price": "3.00"}, format="json"
        )
    else:
        response = manager.post(
            "/api/products/MUG/variants", {"sku": "New-1", "price": "3.00"}, format="json"
        )

    # then
    assert response.status_code == 201, response.content
    found = api_client.get("/api/products/NEW-1")
    assert found.status_code == 200
    assert "New-1" in [variant["sku"] for variant in found.json()["variants"]]


@pytest.mark.django_db(transaction=True)
def test_a_refused_write_retires_nothing(api_client, client_for, two_products):
    # given
    tee, _mug = two_products
    api_client.get("/api/products/TEE-BLK-M")
    entry = cached(catalog_cache.detail_key(tee.pk))
    generation = caching.current_generation("test", catalog_cache.LIST_GENERATION_KEY)
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))

    # when: a price with a value its type refuses, in one request
    response = manager.patch(
        "/api/variants/TEE-BLK-M",
        {"price": "1.00", "attributes": {"colour": "purple"}},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert entry is not None
    assert cached(catalog_cache.detail_key(tee.pk)) == entry
    assert caching.current_generation("test", catalog_cache.LIST_GENERATION_KEY) == generation
