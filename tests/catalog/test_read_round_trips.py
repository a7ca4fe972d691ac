"""Cached catalog reads cost one Redis round trip: the rate-limit counter travels in the
pipeline of the cache read (ecommerce.api.ratelimit.PendingCount), and is still judged
before anything is rendered, and counted whatever the view did.

Round trips are counted on the real redis-py connection (each packed send is one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.connection
from rest_framework.test import APIClient

from ecommerce.api import ratelimit
from tests.catalog.factories import make_product
from tests.catalog.test_cache import computes
from tests.ecommerce.test_ratelimit import assert_rate_headers, assert_rate_limited

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> Iterator[None]:
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMITS = dict.fromkeys(("auth", "orders", "writes", "reads"), "1000/d")
    ratelimit.reset_bypass()
    yield
    ratelimit.reset_bypass()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[n]: packed sends to Redis since the last reset (a pipeline is one)."""
    sent = [0]
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return send(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def trips(round_trips: list[int], client: APIClient, path: str, **headers: str) -> tuple[int, Any]:
    round_trips[0] = 0
    response = client.get(path, **headers)
    return round_trips[0], response


def test_a_warm_read_is_one_round_trip_by_id_and_two_by_sku_or_list(
    api_client: APIClient, round_trips: list[int]
) -> None:
    product = make_product(sku="mug", stock=3)
    for path in (f"/api/products/{product.pk}", "/api/products/mug", "/api/products"):
        assert api_client.get(path).status_code == 200  # warm

    by_id = trips(round_trips, api_client, f"/api/products/{product.pk}")
    by_sku = trips(round_trips, api_client, "/api/products/mug")
    listing = trips(round_trips, api_client, "/api/products")
    etag = by_id[1]["ETag"]
    not_modified = trips(
        round_trips, api_client, f"/api/products/{product.pk}", HTTP_IF_NONE_MATCH=etag
    )

    # was 2, 3 and 3: the counter's own pipeline, then the reads
    assert (by_id[0], by_sku[0], listing[0], not_modified[0]) == (1, 2, 2, 1)
    for _, response in (by_id, by_sku, listing):
        assert response.status_code == 200
    assert not_modified[1].status_code == 304
    # Counted all the same, on one counter per address: 3 warm-ups, then these 4.
    assert_rate_headers(not_modified[1], limit=1000, remaining=1000 - 7)


@pytest.mark.parametrize("path", ["/api/products/{pk}", "/api/products/mug", "/api/products"])
def test_a_piggybacked_read_is_refused_over_the_limit_before_anything_is_rendered(
    api_client: APIClient, settings: Any, path: str
) -> None:
    settings.RATE_LIMITS["reads"] = "2/d"
    product = make_product(sku="mug", stock=3)
    other = make_product(sku="cup", stock=1)
    url = path.format(pk=product.pk)
    answers = [api_client.get(url) for _ in range(2)]
    renders = computes() + computes("product_list")

    over = api_client.get(url)
    over_uncached = api_client.get(f"/api/products/{other.pk}")
    over_304 = api_client.get(url, HTTP_IF_NONE_MATCH=answers[0]["ETag"])

    assert [a.status_code for a in answers] == [200, 200]
    assert_rate_headers(answers[1], limit=2, remaining=0)
    assert_rate_limited(over, scope="reads", limit=2)
    assert_rate_limited(over_uncached, scope="reads", limit=2)
    assert_rate_limited(over_304, scope="reads", limit=2)
    assert computes() + computes("product_list") == renders  # nothing rendered for them


def test_reads_that_never_reach_the_cache_are_counted_on_their_own(
    api_client: APIClient, settings: Any, round_trips: list[int]
) -> None:
    settings.RATE_LIMITS["reads"] = "2/d"
    huge_id = "9" * 30  # no id column holds it: 404 before any cache read

    answers = [api_client.get(f"/api/products/{huge_id}") for _ in range(2)]
    over = api_client.get(f"/api/products/{huge_id}")

    assert [a.status_code for a in answers] == [404, 404]
    assert_rate_headers(answers[1], limit=2, remaining=0)
    assert_rate_limited(over, scope="reads", limit=2)


def test_staff_reads_and_writes_are_counted_as_before(
    client_for: Any, settings: Any, manager: Any
) -> None:
    settings.RATE_LIMITS["reads"] = "1/d"
    make_product(sku="mug", stock=3)
    client = client_for(manager)

    first = client.get("/api/products/mug")
    second = client.get("/api/products/mug")

    assert first.status_code == 200
    assert_rate_limited(second, scope="reads", limit=1)
