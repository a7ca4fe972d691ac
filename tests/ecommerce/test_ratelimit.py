"""Rate limits per scope, login lockout, and what happens when Redis cannot count.

Limits are made small through the `settings` fixture; windows are a day long so that no
window can end between two requests of one test. Counters live in the per-worker cache
prefix, which the suite empties before every test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django_ratelimit.core import get_usage
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from apps.users.models import User
from ecommerce.api import ratelimit
from tests.ecommerce.helpers import problem
from tests.ecommerce.test_settings import SETUP, run_python
from tests.servers import RedisServer
from tests.users.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

DAY = 86400
GENEROUS = "1000/d"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> Iterator[None]:
    """Every scope generous unless a test narrows one; no trusted proxy; no stale bypass."""
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMITS = dict.fromkeys(("auth", "orders", "writes", "reads"), GENEROUS)
    settings.TRUSTED_PROXY_CIDRS = []
    settings.TRUSTED_PROXY_COUNT = 0
    ratelimit.reset_bypass()
    yield
    ratelimit.reset_bypass()


def refused(scope: str) -> float:
    return REGISTRY.get_sample_value("ecommerce_rate_limited_requests_total", {"scope": scope}) or 0


def client_at(address: str) -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD) -> Any:
    return client.post("/api/auth/token", {"email": email, "password": password})


def assert_rate_headers(response: Any, *, limit: int, remaining: int) -> int:
    """Check the RateLimit-* headers; return RateLimit-Reset (seconds)."""
    assert response["RateLimit-Limit"] == str(limit)
    assert response["RateLimit-Remaining"] == str(remaining)
    assert response["RateLimit-Policy"] == f"{limit};w={DAY}"
    reset = int(response["RateLimit-Reset"])
    assert 0 <= reset <= DAY
    return reset


def assert_rate_limited(response: Any, *, scope: str, limit: int) -> dict[str, Any]:
    body = problem(response, 429)
    reset = assert_rate_headers(response, limit=limit, remaining=0)
    wait = max(1, reset)
    assert response["Retry-After"] == str(wait)
    assert body == {
        "type": "urn:ecommerce:problem:rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": (
            f"Too many requests: the {scope} limit is {limit} per {DAY} seconds. "
            f"Expected available in {wait} seconds."
        ),
        "code": "rate_limited",
        "instance": body["instance"],
        "request_id": response["X-Request-ID"],
    }
    return body


# --- Reads, writes, orders ------------------------------------------------------------------


def test_anonymous_reads_are_limited_per_address_with_headers_on_every_answer(
    settings: Any,
) -> None:
    settings.RATE_LIMITS["reads"] = "3/d"
    client = client_at("198.51.100.1")
    before = refused("reads")

    answers = [client.get("/api/categories") for _ in range(3)]
    over = client.get("/api/categories")

    assert [a.status_code for a in answers] == [200, 200, 200]
    for remaining, answer in zip((2, 1, 0), answers, strict=True):
        assert_rate_headers(answer, limit=3, remaining=remaining)
    assert_rate_limited(over, scope="reads", limit=3)
    assert refused("reads") == before + 1
    assert client_at("198.51.100.2").get("/api/categories").status_code == 200


def test_signed_in_reads_are_limited_per_user_not_per_address(
    settings: Any, client_for: Callable[[Any], APIClient]
) -> None:
    settings.RATE_LIMITS["reads"] = "2/d"
    alice, bob = client_for(UserFactory()), client_for(UserFactory())

    alice_answers = [alice.get("/api/users/me").status_code for _ in range(3)]

    assert alice_answers == [200, 200, 429]
    assert bob.get("/api/users/me").status_code == 200


def test_order_creation_has_its_own_per_user_limit_counted_before_validation(
    settings: Any, client_for: Callable[[Any], APIClient]
) -> None:
    settings.RATE_LIMITS["orders"] = "1/d"
    settings.RATE_LIMITS["writes"] = "1/d"
    buyer = UserFactory()
    client = client_for(buyer)
    before = refused("orders")

    first = client.post("/api/orders", {"items": []})
    second = client.post("/api/orders", {"items": []})

    assert first.status_code == 400
    assert_rate_limited(second, scope="orders", limit=1)
    assert refused("orders") == before + 1
    # Other writes count apart, and so does every other buyer.
    assert client.patch("/api/users/me", {"name": "Al"}).status_code == 200
    assert client_for(UserFactory()).post("/api/orders", {"items": []}).status_code == 400


def test_other_writes_are_limited_per_user(
    settings: Any, client_for: Callable[[Any], APIClient]
) -> None:
    settings.RATE_LIMITS["writes"] = "2/d"
    user = UserFactory(name="Before")
    client = client_for(user)

    statuses = [client.patch("/api/users/me", {"name": f"N{i}"}).status_code for i in range(3)]

    assert statuses == [200, 200, 429]
    user.refresh_from_db()
    assert user.name == "N1"


def test_the_counter_is_django_ratelimits_own(settings: Any) -> None:
    settings.RATE_LIMITS["reads"] = "5/d"
    client = client_at("198.51.100.1")

    for _ in range(2):
        client.get("/api/categories")

    usage = get_usage(
        RequestFactory().get("/"),
        group="reads:ip",
        key=lambda _group, _request: "198.51.100.1",
        rate="5/d",
    )
    assert usage is not None
    assert (usage["count"], usage["limit"], usage["should_limit"]) == (2, 5, False)


def test_embedded_mode_counts_in_the_local_memory_cache(settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "ratelimit-embedded",
        }
    }
    settings.RATE_LIMITS["reads"] = "2/d"
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 1
    settings.LOGIN_LOCKOUT_SECONDS = 600
    UserFactory(email="amy@example.com")
    client = client_at("198.51.100.1")

    reads = [client.get("/api/categories") for _ in range(3)]
    logins = [login(client, "amy@example.com", password) for password in ("wrong", "x")]

    assert [r.status_code for r in reads] == [200, 200, 429]
    assert_rate_headers(reads[1], limit=2, remaining=0)
    assert logins[0].status_code == 401
    assert problem(logins[1], 429)["code"] == "login_locked"
    assert logins[1]["Retry-After"] == "600"


def test_disabled_limits_count_nothing_and_send_no_headers(settings: Any) -> None:
    settings.RATE_LIMITS["reads"] = "1/d"
    settings.RATE_LIMIT_ENABLED = False
    client = client_at("198.51.100.1")

    answers = [client.get("/api/categories") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not any(name in answers[-1] for name in RATE_HEADERS)


# --- Auth: per address and per account ------------------------------------------------------


def test_logins_are_limited_per_address_whatever_account_they_name(settings: Any) -> None:
    settings.RATE_LIMITS["auth"] = "2/d"
    client = client_at("198.51.100.1")
    before = refused("auth")

    statuses = [login(client, f"nobody{i}@example.com").status_code for i in range(2)]
    over = login(client, "nobody9@example.com")

    assert statuses == [401, 401]
    assert_rate_limited(over, scope="auth", limit=2)
    assert refused("auth") == before + 1


def test_the_login_limit_is_per_address_so_naming_an_account_cannot_block_its_owner(
    settings: Any,
) -> None:
    """A per-account counter would let anyone keep a victim out by naming their email."""
    settings.RATE_LIMITS["auth"] = "2/d"
    UserFactory(email="amy@example.com")
    attacker = client_at("198.51.100.66")

    attempts = [login(attacker, "amy@example.com", "wrong").status_code for _ in range(3)]
    owner = [login(client_at("198.51.100.7"), email) for email in ["amy@example.com"] * 2]

    assert attempts == [401, 401, 429]
    assert [response.status_code for response in owner] == [200, 200]
    # Other addresses naming the account are counted apart from each other too.
    assert login(client_at("198.51.100.8"), " AMY@Example.com").status_code == 200


def test_a_spoofed_forwarded_for_header_does_not_bypass_the_limit(settings: Any) -> None:
    settings.RATE_LIMITS["auth"] = "2/d"
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = client_at("10.0.0.2")

    statuses = [
        proxy.post(
            "/api/auth/token",
            {"email": f"n{i}@example.com", "password": "x"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 198.51.100.1",
        ).status_code
        for i in range(3)
    ]

    assert statuses == [401, 401, 429]
    # A client really behind another address is counted apart.
    other = proxy.post(
        "/api/auth/token",
        {"email": "n9@example.com", "password": "x"},
        HTTP_X_FORWARDED_FOR="198.51.100.2",
    )
    assert other.status_code == 401


def test_ipv6_clients_share_a_counter_per_64_prefix(settings: Any) -> None:
    settings.RATE_LIMITS["reads"] = "1/d"

    first = client_at("2001:db8:1:2::a").get("/api/categories")
    same_prefix = client_at("2001:db8:1:2::b").get("/api/categories")
    other_prefix = client_at("2001:db8:1:3::a").get("/api/categories")

    assert [first.status_code, same_prefix.status_code, other_prefix.status_code] == [
        200,
        429,
        200,
    ]


def test_registration_and_set_password_count_in_the_auth_scope(settings: Any) -> None:
    settings.RATE_LIMITS["auth"] = "2/d"
    settings.RATE_LIMITS["writes"] = "1/d"
    client = client_at("198.51.100.1")

    registered = [
        client.post("/api/users", {"name": "A", "email": f"a{i}@example.com"}).status_code
        for i in range(2)
    ]
    set_password = client.post("/api/users/set-password", {"token": "x.y", "password": "p"})

    assert registered == [201, 201]
    assert_rate_limited(set_password, scope="auth", limit=2)
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "a0@example.com",
        "a1@example.com",
    ]


# --- Login lockout --------------------------------------------------------------------------


@pytest.fixture
def lockout(settings: Any) -> None:
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 3
    settings.LOGIN_LOCKOUT_IP_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 600


def assert_locked(response: Any) -> None:
    body = problem(response, 429)
    assert 590 <= int(response["Retry-After"]) <= 600
    assert body["code"] == "login_locked"
    assert body["title"] == "Too Many Requests"
    assert body["detail"] == (
        "Too many failed logins for this account or from this address. "
        f"Expected available in {response['Retry-After']} seconds."
    )


@pytest.mark.usefixtures("lockout")
def test_an_account_is_locked_from_the_failing_address_only_even_for_the_right_password() -> None:
    UserFactory(email="amy@example.com")
    attacker = client_at("198.51.100.66")
    before = refused("login")

    failures = [login(attacker, "amy@example.com", "wrong").status_code for _ in range(3)]
    locked = login(attacker, "AMY@example.com")

    assert failures == [401, 401, 401]
    assert_locked(locked)
    assert "access" not in json.loads(locked.content)
    assert refused("login") == before + 1
    # The owner, elsewhere, is not locked out; the attacker's other guesses are not either,
    # until the address's own ceiling.
    assert login(client_at("198.51.100.7"), "amy@example.com").status_code == 200
    assert login(attacker, "bob@example.com", "wrong").status_code == 401


def test_twenty_failures_from_one_address_lock_that_address_never_the_victim_elsewhere(
    settings: Any,
) -> None:
    """The shipped thresholds: 5 per (account, address), 20 per address."""
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    UserFactory(email="victim@example.com")
    UserFactory(email="attacker@example.com")
    attacker = client_at("203.0.113.66")

    on_victim = [login(attacker, "victim@example.com", "wrong").status_code for _ in range(20)]
    victim_elsewhere = login(client_at("198.51.100.7"), "victim@example.com")
    on_others = [login(attacker, f"n{i}@example.com", "wrong").status_code for i in range(15)]
    own_account = login(attacker, "attacker@example.com")

    # Refused attempts are not failures: the pair stops counting once locked.
    assert on_victim == [401] * 5 + [429] * 15
    assert victim_elsewhere.status_code == 200
    assert "access" in victim_elsewhere.json()
    # 5 + 15 failures: the address reaches its ceiling, whatever account it names next.
    assert on_others == [401] * 15
    assert problem(own_account, 429)["code"] == "login_locked"
    assert login(client_at("198.51.100.7"), "victim@example.com").status_code == 200


@pytest.mark.usefixtures("lockout")
def test_behind_trusted_proxies_the_lockout_follows_the_forwarded_client(settings: Any) -> None:
    """Every request reaches the app from the ingress: its peer address is no client's."""
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/8"]
    UserFactory(email="amy@example.com")
    ingress = client_at("10.0.0.2")

    def via_ingress(forwarded_for: str, password: str) -> int:
        return int(
            ingress.post(
                "/api/auth/token",
                {"email": "amy@example.com", "password": password},
                HTTP_X_FORWARDED_FOR=forwarded_for,
            ).status_code
        )

    # The attacker prepends a made-up address; the ingress appends the real one.
    attacker = [via_ingress(f"198.51.100.{i}, 203.0.113.66", "wrong") for i in range(4)]
    owner = via_ingress("198.51.100.7", DEFAULT_PASSWORD)

    assert attacker == [401, 401, 401, 429]
    assert owner == 200


@pytest.mark.usefixtures("lockout")
def test_a_forwarded_for_header_from_an_untrusted_peer_changes_nothing(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/8"]
    UserFactory(email="amy@example.com")
    direct = client_at("203.0.113.66")

    statuses = [
        direct.post(
            "/api/auth/token",
            {"email": "amy@example.com", "password": "wrong" if i < 3 else DEFAULT_PASSWORD},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(5)
    ]

    # Each spoofed address is ignored: all count against the peer, which is locked.
    assert statuses == [401, 401, 401, 429, 429]


def test_a_forwarded_for_header_without_trusted_proxies_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ratelimit._forwarded_for_warned = False
    factory = RequestFactory()
    try:
        addresses = [
            ratelimit.client_ip(
                factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
            )
            for i in range(3)
        ]
    finally:
        ratelimit._forwarded_for_warned = False

    assert addresses == ["10.0.0.2"] * 3
    warnings = [r for r in caplog.records if "forwarded_for_ignored" in r.getMessage()]
    assert len(warnings) == 1
    assert "TRUSTED_PROXY_CIDRS" in warnings[0].getMessage()


@pytest.mark.usefixtures("lockout")
def test_an_address_is_locked_after_repeated_failures_on_any_accounts() -> None:
    UserFactory(email="amy@example.com")
    client = client_at("198.51.100.1")

    failures = [login(client, f"n{i}@example.com", "wrong").status_code for i in range(5)]

    assert failures == [401] * 5
    assert_locked(login(client, "amy@example.com"))
    assert login(client_at("198.51.100.2"), "amy@example.com").status_code == 200


@pytest.mark.usefixtures("lockout")
def test_a_successful_login_forgets_the_accounts_failures() -> None:
    UserFactory(email="amy@example.com")
    client = client_at("198.51.100.1")

    statuses = [
        login(client, "amy@example.com", password).status_code
        for password in ["wrong", "wrong", DEFAULT_PASSWORD, "wrong", "wrong", DEFAULT_PASSWORD]
    ]

    assert statuses == [401, 401, 200, 401, 401, 200]


# --- Redis down -----------------------------------------------------------------------------


@pytest.fixture
def throwaway_redis(settings: Any) -> Iterator[RedisServer]:
    server = RedisServer()
    settings.CACHES = server.cache_settings(timeout_seconds=0.25, prefix="rl-test")
    try:
        yield server
    finally:
        server.kill()


def test_with_redis_down_only_auth_is_refused_and_everything_else_passes(
    throwaway_redis: RedisServer, settings: Any, client_for: Callable[[Any], APIClient]
) -> None:
    settings.RATE_LIMITS["reads"] = "5/d"
    user = UserFactory(email="amy@example.com")
    client = client_for(user)
    anonymous = client_at("198.51.100.1")
    refresh = str(RefreshToken.for_user(user))
    up = client.get("/api/users/me")
    assert up.status_code == 200
    assert_rate_headers(up, limit=5, remaining=4)
    before = {scope: refused(scope) for scope in ("auth", "orders", "reads", "writes")}

    throwaway_redis.kill()
    read = client.get("/api/users/me")
    write = client.patch("/api/users/me", {"name": "Still here"})
    refreshed = anonymous.post("/api/auth/token/refresh", {"refresh": refresh})
    order = client.post(
        "/api/orders", {"items": [{"id": "NOPE", "quantity": 1}], "payment_token": "tok_success"}
    )
    token = login(anonymous, "amy@example.com")
    registration = anonymous.post("/api/users", {"name": "B", "email": "b@example.com"})
    set_password = anonymous.post("/api/users/set-password", {"token": "x.y", "password": "p"})

    assert (read.status_code, write.status_code, refreshed.status_code) == (200, 200, 200)
    assert not any(name in read for name in RATE_HEADERS)
    # Past the limiter: the order is refused for what it asks, not for the outage.
    assert problem(order, 400)["code"] == "product_unavailable"
    for response in (token, registration, set_password):
        body = problem(response, 503)
        assert response["Retry-After"] == "2"
        assert body["code"] == "rate_limit_unavailable"
        assert body["detail"] == (
            "Rate limiting is unavailable, so auth requests are refused for now. "
            "Try again in 2 seconds."
        )
    assert User.objects.filter(email="b@example.com").exists() is False
    assert {scope: refused(scope) - before[scope] for scope in before} == {
        "auth": 3,
        "orders": 0,
        "reads": 0,
        "writes": 0,
    }


def test_with_redis_down_the_admin_login_is_refused_like_the_token_view(
    throwaway_redis: RedisServer,
) -> None:
    UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    throwaway_redis.kill()

    response = Client(REMOTE_ADDR="198.51.100.1").post(
        "/admin/login/", {"username": "ops@example.com", "password": DEFAULT_PASSWORD}
    )

    body = problem(response, 503)
    assert body["code"] == "rate_limit_unavailable"
    assert response["Retry-After"] == "2"
    assert "sessionid" not in response.cookies


def test_fail_closed_scopes_come_from_the_settings(
    throwaway_redis: RedisServer, settings: Any, client_for: Callable[[Any], APIClient]
) -> None:
    settings.RATE_LIMIT_FAIL_CLOSED_SCOPES = ["reads", "orders"]
    UserFactory(email="amy@example.com")
    anonymous = client_at("198.51.100.1")
    buyer = client_for(UserFactory())

    throwaway_redis.kill()

    assert problem(anonymous.get("/api/categories"), 503)["code"] == "rate_limit_unavailable"
    assert problem(buyer.post("/api/orders", {"items": []}), 503)["detail"].startswith(
        "Rate limiting is unavailable, so orders requests are refused for now."
    )
    assert login(anonymous, "amy@example.com").status_code == 200


def test_a_redis_failure_is_not_retried_for_the_bypass_period(
    throwaway_redis: RedisServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_at("198.51.100.1")
    throwaway_redis.kill()
    calls: list[str] = []
    real_count = ratelimit._count_in_redis

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["group"])
        return real_count(**kwargs)

    monkeypatch.setattr(ratelimit, "_count_in_redis", counting)

    statuses = [client.get("/api/categories").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert calls == ["reads:ip"]


# --- Rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "action", "method", "expected"),
    [
        (None, None, "GET", "reads"),
        (None, None, "HEAD", "reads"),
        (None, None, "OPTIONS", "reads"),
        (None, None, "POST", "writes"),
        (None, None, "DELETE", "writes"),
        ("auth", None, "POST", "auth"),
        ({"create": "orders"}, "create", "POST", "orders"),
        ({"create": "orders"}, "cancel", "POST", "writes"),
        ({"create": "orders"}, "list", "GET", "reads"),
    ],
)
def test_scope_is_the_views_declaration_else_reads_or_writes_by_method(
    declared: Any, action: str | None, method: str, expected: str
) -> None:
    view = type("View", (), {"rate_limit_scope": declared, "action": action})()

    assert ratelimit.scope_of(view, method) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"email": " Amy@Example.COM "}, "amy@example.com"),
        ({"username": "Amy"}, "amy"),
        ({"email": ""}, None),
        ({"email": ["a@example.com"]}, None),
        ({"refresh": "token"}, None),
        (["email"], None),
    ],
)
def test_the_account_named_in_a_body_is_its_email_or_username(
    data: Any, expected: str | None
) -> None:
    assert ratelimit.account_of(data) == expected


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["RATE_LIMIT_AUTH", "RATE_LIMIT_READS"])
@pytest.mark.parametrize("value", ["ten/m", "10", "10/0m", "10/w"])
def test_a_malformed_rate_stops_start_up_with_one_line(variable: str, value: str) -> None:
    result = run_python(SETUP, **{variable: value})

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"ImproperlyConfigured: {variable}={value!r} is not a rate such as 10/m or 100/5m."
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TRUSTED_PROXY_CIDRS": "10.0.0.0/8", "TRUSTED_PROXY_COUNT": "1"},
            "ImproperlyConfigured: set TRUSTED_PROXY_CIDRS or TRUSTED_PROXY_COUNT, not both.",
        ),
        (
            {"TRUSTED_PROXY_CIDRS": "10.0.0.0/8,10.0.0.300/32"},
            "ImproperlyConfigured: TRUSTED_PROXY_CIDRS: "
            "'10.0.0.300/32' does not appear to be an IPv4 or IPv6 network.",
        ),
    ],
)
def test_a_bad_trusted_proxy_setting_stops_start_up_with_one_line(
    env: dict[str, str], message: str
) -> None:
    result = run_python(SETUP, **env)

    assert result.returncode == 1
    assert re.sub(r"\s+", " ", result.stderr.strip()) == message
