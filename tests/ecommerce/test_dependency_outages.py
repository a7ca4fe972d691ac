"""Real processes through real outages: Redis frozen or killed, PostgreSQL stopped or silent.

gunicorn runs the project with its own config against a throwaway redis-server (and, for
the database case, a throwaway PostgreSQL cluster), both started here and stopped by PID.
While a dependency is out, product reads, an order, a login and the health probes must
each answer within BOUND_SECONDS with what the docs promise (docs/operations.md, "When
Redis or PostgreSQL fails"): a 2xx, or a 503 problem+json with Retry-After; never a bare
500, never a gunicorn worker timeout. When the dependency is back, service must come back
without restarting anything. Also: a database host that never answers costs a request the
connect timeout, and a statement stuck on a row lock is cancelled before the worker timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_py
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from apps.inventory.models import Stock
from apps.users import services as users_services
from apps.users.models import User
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.servers import (
    GunicornServer,
    PostgresServer,
    RedisServer,
    postgres_server,
    project_env,
    redis_server,
    silent_tcp_server,
)

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# What a client may wait for any answer while a dependency is out.
BOUND_SECONDS = 3.0
HASHING_BOUND_SECONDS = 10.0
# Longer than BOUND_SECONDS, so a hang is measured rather than cut short by the client.
CLIENT_TIMEOUT_SECONDS = 40.0
FREEZE_SECONDS = 20.0
# How long service may take to come back once the dependency is back.
RECOVERY_SECONDS = 15.0
PASSWORD = "outage-password-0123"
SKU = "outage-tee"
PROBLEM = "application/problem+json"
# No request may be refused by a limit during these tests: each scope gets a huge one.
ENV = {
    "RATE_LIMIT_AUTH": "100000/m",
    "RATE_LIMIT_ORDERS": "100000/m",
    "RATE_LIMIT_WRITES": "100000/m",
    "RATE_LIMIT_READS": "100000/m",
    "LOGIN_LOCKOUT_ACCOUNT_FAILURES": "100000",
    "LOGIN_LOCKOUT_IP_FAILURES": "100000",
    # The start-up checks of a production configuration, answered for a test.
    "METRICS_TOKEN": "outage-metrics-token",
    "ALLOW_IN_PROCESS_PAYMENT_SANDBOX": "1",
    "ACCESS_LOG": "0",
}


@dataclass
class Reply:
    name: str
    status: int | None  # None: no HTTP answer at all (connection error or client timeout)
    elapsed: float
    content_type: str = ""
    retry_after: str | None = None
    body: Any = None

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def __str__(self) -> str:
        return f"{self.name}: {self.status} {self.code or ''} in {self.elapsed:.2f}s"


@dataclass
class Shop:
    url: str
    email: str
    token: str = ""
    replies: list[Reply] = field(default_factory=list)

    def call(self, client: httpx.Client, name: str, method: str, path: str, **kw: Any) -> Reply:
        started = time.monotonic()
        try:
            response = client.request(method, self.url + path, **kw)
        except httpx.TransportError:
            reply = Reply(name, None, time.monotonic() - started)
        else:
            content_type = response.headers.get("Content-Type", "")
            body = response.json() if "json" in content_type else response.text
            reply = Reply(
                name,
                response.status_code,
                time.monotonic() - started,
                content_type,
                response.headers.get("Retry-After"),
                body,
            )
        self.replies.append(reply)
        return reply

    def login(self, client: httpx.Client) -> Reply:
        reply = self.call(
            client,
            "login",
            "POST",
            "/api/auth/token",
            json={"email": self.email, "password": PASSWORD},
        )
        if reply.status == 200:
            self.token = reply.body["access"]
        return reply

    def round(self, *, product: str = SKU) -> dict[str, Reply]:
        """One of each request a shop serves; the token from the last good login orders."""
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            replies = [
                self.call(client, "product", "GET", f"/api/products/{product}"),
                self.call(client, "products", "GET", "/api/products"),
                self.call(
                    client,
                    "order",
                    "POST",
                    "/api/orders",
                    json={"items": [{"id": SKU, "quantity": 1}], "payment_token": "tok_success"},
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                ),
                self.login(client),
                self.call(client, "ready", "GET", "/health/ready"),
                self.call(client, "live", "GET", "/health/live"),
            ]
        return {reply.name: reply for reply in replies}


def bound_of(reply: Reply) -> float:
    # A successful login hashes the password (PBKDF2, a million rounds): CPU, not waiting,
    # and on a busy 2-core box that alone can take over a second.
    return HASHING_BOUND_SECONDS if (reply.name, reply.status) == ("login", 200) else BOUND_SECONDS


def assert_bounded(replies: list[Reply]) -> None:
    """Every request answered in time, and no failure was a bare 500 or a dropped socket."""
    slow = [str(reply) for reply in replies if reply.elapsed >= bound_of(reply)]
    assert not slow, f"answers slower than {BOUND_SECONDS}s: {slow}"
    unanswered = [str(reply) for reply in replies if reply.status is None]
    assert not unanswered, f"no answer: {unanswered}"
    for reply in replies:
        if reply.status is not None and reply.status >= 500:
            assert reply.status == 503, str(reply)
            assert reply.content_type == PROBLEM, str(reply)
            assert reply.retry_after is not None, str(reply)
            assert int(reply.retry_after) >= 1, str(reply)


def assert_no_worker_timeout(log_path: Path) -> None:
    log = log_path.read_text(errors="replace")
    assert "WORKER TIMEOUT" not in log
    assert "Worker timed out" not in log


def until_normal(shop: Shop, is_normal: Callable[[dict[str, Reply]], bool]) -> float:
    """Send rounds until one is entirely normal; return how long that took."""
    started = time.monotonic()
    while True:
        if is_normal(shop.round()):
            return time.monotonic() - started
        if time.monotonic() - started > RECOVERY_SECONDS:
            recent = [str(reply) for reply in shop.replies[-6:]]
            pytest.fail(f"service did not come back within {RECOVERY_SECONDS}s: {recent}")
        time.sleep(0.2)


def all_up(round_: dict[str, Reply]) -> bool:
    return (
        round_["product"].status == 200
        and round_["products"].status == 200
        and round_["order"].status == 201
        and round_["login"].status == 200
        and round_["ready"].status == 200
        and round_["ready"].body["status"] == "ok"
        and round_["live"].status == 200
    )


def print_figures(title: str, replies: list[Reply]) -> None:
    by_name: dict[str, list[float]] = {}
    for reply in replies:
        by_name.setdefault(reply.name, []).append(reply.elapsed)
    figures = ", ".join(
        f"{name} n={len(times)} max={max(times) * 1000:.0f}ms" for name, times in by_name.items()
    )
    print(f"\n{title}: {figures}")


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_shop(tmp_path: Path, transactional_db: Any) -> Iterator[tuple[Shop, RedisServer, Path]]:
    """gunicorn (2 workers) on the test database and a throwaway Redis; a product and a user."""
    make_product(sku=SKU, stock=100_000, price="9.50")
    email = f"outage-{uuid.uuid4().hex[:8]}@example.com"
    user = users_services.register_user(email=email, name="Outage Buyer")
    # The server checks passwords with the project's hashers, not the suite's fast one.
    user.password = make_password(PASSWORD, hasher=PBKDF2PasswordHasher())
    user.save(update_fields=["password"])
    log_path = tmp_path / "web.log"
    with redis_server() as redis:
        env = project_env(
            REDIS_URL=redis.url, CACHE_KEY_PREFIX=f"outage-{uuid.uuid4().hex[:8]}", **ENV
        )
        web = GunicornServer(workers=2, env=env, log_path=log_path)
        try:
            yield Shop(url=web.url, email=email), redis, log_path
        finally:
            web.stop()


def redis_outage_is_answered(round_: dict[str, Reply]) -> None:
    """What each request gets while Redis is out (docs/operations.md)."""
    # Reads come from the database; orders are not limited (the `orders` scope fails open).
    assert round_["product"].status == 200, str(round_["product"])
    assert round_["products"].status == 200, str(round_["products"])
    assert round_["order"].status == 201, str(round_["order"])
    # Logins fail closed: without counters, password guessing would be free.
    login = round_["login"]
    assert (login.status, login.code) == (503, "rate_limit_unavailable"), str(login)
    # Readiness needs only the database: a Redis outage degrades, it does not close the shop.
    ready = round_["ready"]
    assert ready.status == 200, str(ready)
    assert (ready.body["status"], ready.body["checks"]["cache"]["status"]) == ("degraded", "down")
    assert round_["live"].status == 200


def test_a_frozen_redis_never_hangs_a_request(redis_shop) -> None:
    shop, redis, log_path = redis_shop
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        assert shop.login(client).status == 200
    assert all_up(shop.round())

    before = len(shop.replies)
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        rounds = 0
        while time.monotonic() - frozen_at < FREEZE_SECONDS:
            redis_outage_is_answered(shop.round())
            rounds += 1
        during = shop.replies[before:]
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)

    recovered_in = until_normal(shop, all_up)

    assert_bounded(shop.replies)
    assert_no_worker_timeout(log_path)
    assert rounds >= 5
    print_figures(f"redis frozen {FREEZE_SECONDS:g}s, {rounds} rounds", during)
    print(f"normal service {recovered_in:.2f}s after SIGCONT")


def test_a_killed_redis_refusing_connections_never_fails_a_request(redis_shop) -> None:
    shop, redis, log_path = redis_shop
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        assert shop.login(client).status == 200
    assert all_up(shop.round())
    port = redis.port

    before = len(shop.replies)
    redis.kill()
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < 5:
        redis_outage_is_answered(shop.round())
        rounds += 1
    during = shop.replies[before:]
    restarted = _redis_on(port)
    try:
        recovered_in = until_normal(shop, all_up)
    finally:
        restarted.kill()
        restarted.wait(timeout=5)

    assert_bounded(shop.replies)
    assert_no_worker_timeout(log_path)
    print_figures(f"redis killed, {rounds} rounds", during)
    print(f"normal service {recovered_in:.2f}s after Redis restarted empty")


def _redis_on(port: int) -> subprocess.Popen[bytes]:
    """A fresh, empty redis-server on `port` (the one just killed): Redis restarted."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            redis_py.Redis(port=port, socket_timeout=0.2).ping()
            return process
        except redis_py.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.02)


# --- PostgreSQL ----------------------------------------------------------------------------

SEED = """
from decimal import Decimal
from apps.catalog import services
from apps.users import services as users_services
for sku in ("outage-tee", "cold-1", "cold-2", "cold-3"):
    services.create_product(
        name=sku,
        variants=[services.VariantSpec(sku=sku, price=Decimal("9.50"), initial_stock=100000)],
    )
users_services.register_user(email="{email}", name="Outage Buyer", password="{password}")
"""


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        timeout=240,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}"


@pytest.fixture
def postgres_shop(tmp_path: Path) -> Iterator[tuple[Shop, PostgresServer, Path]]:
    """gunicorn on a migrated database in a throwaway PostgreSQL cluster, and its own Redis."""
    email = "outage-buyer@example.com"
    log_path = tmp_path / "web.log"
    with postgres_server() as postgres, redis_server() as redis:
        env = {
            **os.environ,
            "DJANGO_READ_DOT_ENV_FILE": "0",
            "DATABASE_URL": postgres.create_database("shop"),
            "REDIS_URL": redis.url,
            "CACHE_KEY_PREFIX": "outage",
            "CELERY_BROKER_URL": "",
            **ENV,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        _manage(env, "migrate", "--no-input")
        _manage(env, "shell", "-c", SEED.format(email=email, password=PASSWORD))
        web = GunicornServer(workers=2, env=env, log_path=log_path)
        try:
            yield Shop(url=web.url, email=email), postgres, log_path
        finally:
            web.stop()


def test_a_stopped_database_is_a_503_and_service_returns_when_it_starts(postgres_shop) -> None:
    shop, postgres, log_path = postgres_shop
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        assert shop.login(client).status == 200
    assert all_up(shop.round())
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        # Warm the list page again (the order changed stock); cold-* stay uncached.
        assert shop.call(client, "products", "GET", "/api/products").status == 200

    before = len(shop.replies)
    postgres.stop()
    rounds = []
    for cold in ("cold-1", "cold-2"):
        rounds.append(shop.round(product=cold))
    # The admin reads its session through the session and authentication middlewares.
    with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS, cookies={"sessionid": "a" * 32}) as client:
        admin = shop.call(client, "admin", "GET", "/admin/")
    during = shop.replies[before:]

    for round_ in rounds:
        # What the cache holds is still served: anonymous reads need no database.
        assert round_["products"].status == 200
        for name in ("product", "order", "login", "ready"):
            reply = round_[name]
            assert reply.status == 503, str(reply)
            assert reply.content_type == PROBLEM
            assert int(reply.retry_after or 0) >= 1
        for name in ("product", "order", "login"):
            assert round_[name].code == "database_unavailable", str(round_[name])
        ready = round_["ready"]
        assert ready.code == "unhealthy"
        assert ready.body["checks"]["database"]["status"] == "down"
        assert round_["live"].status == 200
    assert (admin.status, admin.content_type, admin.code) == (503, PROBLEM, "database_unavailable")
    assert_bounded(during)

    postgres.start()
    recovered_in = until_normal(shop, all_up)
    # A restart nobody saw: every worker holds a connection the server has since dropped.
    postgres.stop()
    postgres.start()
    for _ in range(6):
        round_ = shop.round(product="cold-3")
        assert all_up(round_), [str(reply) for reply in round_.values()]

    assert_bounded(shop.replies)
    after = shop.replies[before + len(during) :]
    assert not [str(reply) for reply in after if reply.status and reply.status >= 500]
    assert_no_worker_timeout(log_path)
    print_figures("database stopped", during)
    print(f"normal service {recovered_in:.2f}s after the database started")


def test_a_database_host_that_never_answers_fails_requests_within_the_connect_timeout(
    tmp_path: Path,
) -> None:
    """A black-holed database (the handshake completes, nothing answers): each request that
    needs it waits DATABASE_CONNECT_TIMEOUT_SECONDS at most, then gets its 503."""
    with silent_tcp_server() as port, redis_server() as redis:
        env = {
            **os.environ,
            "DJANGO_READ_DOT_ENV_FILE": "0",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/shop",
            "DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
            "REDIS_URL": redis.url,
            "CACHE_KEY_PREFIX": "silent-db",
            "CELERY_BROKER_URL": "",
            **ENV,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        web = GunicornServer(workers=1, env=env, log_path=tmp_path / "web.log")
        try:
            # An access token needs no database to mint (a refresh token would be recorded).
            token = AccessToken.for_user(User(pk=1, email="nobody@example.com", password="x"))
            shop = Shop(url=web.url, email="nobody@example.com", token=str(token))
            round_ = shop.round()
        finally:
            web.stop()

    for name in ("product", "products", "order", "login"):
        reply = round_[name]
        assert (reply.status, reply.code) == (503, "database_unavailable"), str(reply)
        assert 2.0 <= reply.elapsed < BOUND_SECONDS, str(reply)
    ready = round_["ready"]
    assert (ready.status, ready.code) == (503, "unhealthy")
    assert ready.body["checks"]["database"] == {"status": "down", "error": "no answer within 1s"}
    assert round_["live"].status == 200
    assert_bounded(shop.replies)
    print_figures("database host silent", shop.replies)


# --- A statement stuck on a lock -------------------------------------------------------------


def test_an_order_stuck_on_a_row_lock_is_a_503_before_gunicorn_kills_the_worker(
    tmp_path: Path, transactional_db: Any
) -> None:
    """With GUNICORN_TIMEOUT_SECONDS=6, web statements give up after 3 s (half), so the
    request answers 503 problem+json instead of dying with its worker."""
    product = make_product(sku=SKU, stock=100, price="9.50")
    user = users_services.register_user(email="locked-out@example.com", name="Locked Out")
    env = project_env(
        CACHE_KEY_PREFIX=f"lock-{uuid.uuid4().hex[:8]}", GUNICORN_TIMEOUT_SECONDS="6", **ENV
    )
    web = GunicornServer(workers=1, env=env, log_path=tmp_path / "web.log")
    shop = Shop(url=web.url, email=user.email, token=str(AccessToken.for_user(user)))
    order = {"items": [{"id": SKU, "quantity": 1}], "payment_token": "tok_success"}
    headers = {"Authorization": f"Bearer {shop.token}"}
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as client:
            with transaction.atomic():
                # Another transaction holds the variant's stock row, and keeps it.
                list(Stock.objects.select_for_update().filter(variant=product.variant))
                stuck = shop.call(
                    client, "order", "POST", "/api/orders", json=order, headers=headers
                )
            after = shop.call(client, "order", "POST", "/api/orders", json=order, headers=headers)
    finally:
        web.stop()

    assert (stuck.status, stuck.content_type, stuck.code) == (503, PROBLEM, "database_unavailable")
    assert stuck.retry_after == "5"
    assert 3.0 <= stuck.elapsed < 6.0, str(stuck)
    assert after.status == 201, str(after)
    assert stock_of(product.variant.pk) == 99  # the stuck order rolled back whole
    assert_no_worker_timeout(tmp_path / "web.log")
    print(f"\norder behind a held row lock: {stuck}")
