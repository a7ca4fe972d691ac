"""The fast path for warm public reads (ecommerce/api/fastpath.py) says what Django says.

Every test calls two WSGI applications with the same requests: Django's handler alone
(`plain`) and Django's handler behind `FastReads` (`fast`), on the real Redis and
PostgreSQL. A fixed X-Request-ID makes whole answers comparable: status, every header and
the body must be equal, and the fast path's counter tells who answered.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django_redis import get_redis_connection
from prometheus_client import REGISTRY

from apps.catalog import services as catalog_services
from apps.catalog.models import Product
from ecommerce import caching
from ecommerce.api import ratelimit
from ecommerce.api.fastpath import FastReads
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db

REQUEST_ID = "fast-path-test-1"
# What may differ between two answers to the same request: the count and the second.
PER_REQUEST = ("ratelimit-remaining", "ratelimit-reset")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]  # lower-case names, sorted
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name.lower()), None)

    def without(self, *names: str) -> Answer:
        dropped = {name.lower() for name in names}
        kept = tuple(item for item in self.headers if item[0] not in dropped)
        return Answer(self.status, kept, self.body)


def call(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    remote: str = "10.1.2.3",
    **headers: str,
) -> Answer:
    path_info, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": remote,
        "HTTP_X_REQUEST_ID": REQUEST_ID,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **headers,
    }
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        started.update(status=status, headers=response_headers)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    names = sorted((name.lower(), value) for name, value in started["headers"])
    return Answer(int(started["status"][:3]), tuple(names), body)


def fast_reads(outcome: str, route: str = "product_detail") -> float:
    labels = {"route": route, "outcome": outcome}
    return REGISTRY.get_sample_value("ecommerce_fast_reads_total", labels) or 0.0


@pytest.fixture(autouse=True)
def _one_connection() -> Iterator[None]:
    """Requests share the test's database connection, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    caching.reset_bypass()
    ratelimit.reset_bypass()
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    caching.reset_bypass()
    ratelimit.reset_bypass()


@pytest.fixture
def plain() -> WSGIHandler:
    return WSGIHandler()


@pytest.fixture
def fast() -> FastReads:
    return FastReads(WSGIHandler())


@pytest.fixture
def tee() -> Product:
    product = make_product(sku="TEE-1", stock=5, price="19.90", name="Tee")
    make_product(sku="MUG-1", stock=0, price="7.50", name="Mug")
    return product


def served_like_django(plain: Any, fast: FastReads, path: str, **headers: str) -> Answer:
    """Django's answer, then the fast path's (after it learned the route), asserted equal
    and served by the fast path."""
    expected = call(plain, path, **headers)  # fills the cache
    call(fast, path, **headers)  # Django answers; the route's headers are learned
    before = fast_reads("served", _route(path)) + fast_reads("not_modified", _route(path))
    got = call(fast, path, **headers)
    after = fast_reads("served", _route(path)) + fast_reads("not_modified", _route(path))
    assert after == before + 1, "the fast path did not answer"
    # The same client's counter: one down per request (the learning one is Django's).
    remaining = expected.header("ratelimit-remaining")
    assert remaining is not None
    assert got.header("ratelimit-remaining") == str(int(remaining) - 2)
    assert_same(got.without(*PER_REQUEST), expected.without(*PER_REQUEST))
    return got


def assert_same(got: Answer, expected: Answer) -> None:
    assert (got.status, got.body) == (expected.status, expected.body)
    assert dict(got.headers) == dict(expected.headers)
    assert got.headers == expected.headers  # no header twice in one and once in the other


def _route(path: str) -> str:
    return "product_list" if path.split("?")[0].rstrip("/") == "/api/products" else "product_detail"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/products/TEE-1", {}),
        ("/api/products/tee-1/", {}),  # any letter case, the optional slash
        ("/api/products", {}),
        ("/api/products/", {}),
        ("/api/products?page_size=1&ordering=-price", {}),
        ("/api/products?in_stock=true&facets=true&unknown=1", {}),
        ("/api/products?search=tee&search=mug", {}),  # the last value counts, as in Django
        ("/api/products/TEE-1", {"HTTP_ACCEPT": "application/json"}),
        ("/api/products", {"HTTP_ACCEPT": "text/html, */*"}),
        ("/api/products/TEE-1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}),
    ],
)
def test_a_warm_read_is_answered_as_django_answers_it(
    plain: WSGIHandler, fast: FastReads, tee: Product, path: str, headers: dict[str, str]
) -> None:
    got = served_like_django(plain, fast, path, **headers)

    assert got.status == 200
    assert got.header("etag")
    assert got.header("x-request-id") == REQUEST_ID


def test_a_read_by_id_is_answered_as_django_answers_it(
    plain: WSGIHandler, fast: FastReads, tee: Product
) -> None:
    got = served_like_django(plain, fast, f"/api/products/{tee.pk}")

    assert got.body == call(plain, "/api/products/TEE-1").body


def test_conditional_reads_are_answered_as_django_answers_them(
    plain: WSGIHandler, fast: FastReads, tee: Product
) -> None:
    first = served_like_django(plain, fast, "/api/products/TEE-1")  # the route learned
    etag, modified = first.header("etag"), first.header("last-modified")
    assert etag
    assert modified

    assert (
        served_like_django(plain, fast, "/api/products/TEE-1", HTTP_IF_NONE_MATCH=etag).status
        == 304
    )
    assert (
        served_like_django(
            plain, fast, "/api/products/TEE-1", HTTP_IF_MODIFIED_SINCE=modified
        ).status
        == 304
    )
    stale = served_like_django(plain, fast, "/api/products/TEE-1", HTTP_IF_NONE_MATCH='"other"')
    assert stale.status == 200


@pytest.mark.parametrize(
    ("path", "method", "headers", "status"),
    [
        ("/api/products/TEE-1", "GET", {"HTTP_AUTHORIZATION": "Bearer not-a-token"}, 401),
        ("/api/products/TEE-1", "GET", {"HTTP_ACCEPT": "text/html"}, 406),
        ("/api/products", "GET", {"HTTP_ACCEPT": "application/xml"}, 406),
        ("/api/products/TEE-1?format=xml", "GET", {}, 404),
        ("/api/products?format=api", "GET", {}, 404),
        ("/api/products/NOPE-404", "GET", {}, 404),
        ("/api/products/99999999999999999999", "GET", {}, 404),
        ("/api/products/TEE-1", "GET", {"HTTP_HOST": "evil.example"}, 400),
        ("/api/products/TEE-1", "HEAD", {}, 200),
        ("/api/products", "POST", {}, 401),
        ("/api/products?page=99", "GET", {}, 404),
        ("/api/products?min_price=abc", "GET", {}, 400),
        ("/api/products?" + "&".join(f"x{i}=1" for i in range(1001)), "GET", {}, 400),
        ("/api/products/TEE-1?" + "&".join(f"x{i}=1" for i in range(1001)), "GET", {}, 400),
    ],
)
def test_what_the_fast_path_must_not_answer_reaches_django(
    plain: WSGIHandler,
    fast: FastReads,
    tee: Product,
    path: str,
    method: str,
    headers: dict[str, str],
    status: int,
) -> None:
    served_like_django(plain, fast, "/api/products/TEE-1")  # both routes learned and warm
    served_like_django(plain, fast, "/api/products")
    expected = call(plain, path, method=method, **headers)
    call(fast, path, method=method, **headers)  # whatever Django cached, it is there now
    before = fast_reads("served", _route(path))

    got = call(fast, path, method=method, **headers)

    assert got.status == status
    assert fast_reads("served", _route(path)) == before
    # Django's own answers may differ in what changes per request (a 401's challenge).
    assert_same(got.without(*PER_REQUEST), expected.without(*PER_REQUEST))


def test_a_change_retires_what_the_fast_path_serves(
    plain: WSGIHandler,
    fast: FastReads,
    tee: Product,
    django_capture_on_commit_callbacks: Any,
) -> None:
    old = served_like_django(plain, fast, "/api/products/TEE-1")
    old_list = served_like_django(plain, fast, "/api/products")

    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.update_product(product=tee, name="Tee, washed")

    detail = call(fast, "/api/products/TEE-1")  # a miss: Django renders it again
    assert b"Tee, washed" in detail.body
    assert detail.header("etag") != old.header("etag")
    again = served_like_django(plain, fast, "/api/products/TEE-1")
    assert_same(again.without(*PER_REQUEST), detail.without(*PER_REQUEST))
    listed = served_like_django(plain, fast, "/api/products")
    assert b"Tee, washed" in listed.body
    assert listed.header("etag") != old_list.header("etag")


def test_the_rate_limit_counts_each_fast_read_once_and_django_refuses_over_it(
    fast: FastReads, tee: Product, settings: Any
) -> None:
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "reads": "4/d"}
    refused = REGISTRY.get_sample_value("ecommerce_rate_limited_requests_total", {"scope": "reads"})

    answers = [call(fast, "/api/products/TEE-1", remote="10.9.9.9") for _ in range(5)]

    assert [a.status for a in answers] == [200, 200, 200, 200, 429]
    assert [a.header("ratelimit-remaining") for a in answers[:4]] == ["3", "2", "1", "0"]
    assert answers[4].header("retry-after")
    assert fast_reads("limited") >= 1
    after = REGISTRY.get_sample_value("ecommerce_rate_limited_requests_total", {"scope": "reads"})
    assert (after or 0) - (refused or 0) == 1  # the refusal is recorded once
    # Another address has its own counter.
    assert call(fast, "/api/products/TEE-1", remote="10.9.9.8").header("ratelimit-remaining") == "3"


def test_redis_that_lost_the_script_costs_one_request_to_django(
    plain: WSGIHandler, fast: FastReads, tee: Product
) -> None:
    served_like_django(plain, fast, "/api/products/TEE-1")
    get_redis_connection("default").script_flush()
    errors = fast_reads("error")

    passed = call(fast, "/api/products/TEE-1")
    assert_same(
        passed.without(*PER_REQUEST), call(plain, "/api/products/TEE-1").without(*PER_REQUEST)
    )
    assert fast_reads("error") == errors + 1
    served_like_django(plain, fast, "/api/products/TEE-1")


def test_a_cache_that_failed_just_now_is_left_to_django(
    plain: WSGIHandler, fast: FastReads, tee: Product
) -> None:
    served_like_django(plain, fast, "/api/products/TEE-1")
    caching._start_bypass()
    served = fast_reads("served")

    assert call(fast, "/api/products/TEE-1").status == 200
    assert fast_reads("served") == served


def test_the_shipped_wsgi_application_has_the_fast_path() -> None:
    from ecommerce import wsgi

    assert isinstance(wsgi.application, FastReads)


def test_a_connection_redis_closed_costs_one_request_to_django(
    plain: WSGIHandler, fast: FastReads, tee: Product
) -> None:
    served_like_django(plain, fast, "/api/products/TEE-1")
    get_redis_connection("default").client_kill_filter(_type="normal", skipme=True)
    errors = fast_reads("error")

    passed = call(fast, "/api/products/TEE-1")  # the fast path's connection was closed
    caching.reset_bypass()  # whatever Django's own client met, the cache is back

    assert passed.status == 200
    assert fast_reads("error") == errors + 1
    served_like_django(plain, fast, "/api/products/TEE-1")  # on a new connection
