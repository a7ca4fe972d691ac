"""A shop's mixed traffic against one web pod, one worker and the database: a bounded,
constant-arrival-rate load scenario with thresholds (docs/capacity.md).

    .venv/bin/python bench/load.py [--rate 12] [--duration 45] [--web-workers 2]
    make load RATE=12 DURATION=45

Starts what one pod of each kind runs, on free loopback ports, with DEBUG off: gunicorn with
the project's config (ecommerce/gunicorn.conf.py, WEB_CONCURRENCY sync workers), one Celery
worker (default, payments and notifications queues, concurrency 2) and the payment sandbox.
Seeds its own data into DATABASE_URL (default: a database `ecommerce_load`, created if
missing): migrations, seed_demo (shipping to DE, taxes), 200 products with ample stock and
300 customers with access tokens. Then starts iterations at a constant rate, whatever the
server's speed (an open model, like k6's constant-arrival-rate: a slow server faces the same
arrivals and its queue shows in the latencies), at most --max-in-flight at once (more are
counted as dropped). An iteration is one visitor step, drawn as a shop's traffic is:

    browse a listing page 30%, a product page 35%, a search 10%,
    an anonymous cart (create, add 1-2 lines, read it) 17%,
    a signed-in checkout (cart, 1-3 lines, address, shipping method, checkout) 5%,
    a one-call order (POST /api/orders) 3%.

Every order pays with the sandbox's tok_success; the run ends by waiting up to --settle
seconds for the worker to charge them all. It prints latencies per endpoint, the web's and
the worker's CPU per request, database commits and connections, and checks the thresholds
(error rate, p95, p99, dropped iterations, orders paid): exit status 1 when one fails.

Bounded on purpose: at most 200 iterations/s for 300 s, against 127.0.0.1 only. Rate limits
are off (RATE_LIMIT_ENABLED=0): every request comes from one address, which the shop would
rightly limit as one client. Needs the local PostgreSQL and Redis (REDIS_URL, default db 11).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MAX_RATE = 200.0
MAX_DURATION_SECONDS = 300
PRODUCTS = 200
CUSTOMERS = 300
WORDS = ("organic", "classic", "linen", "woollen", "enamel", "ceramic", "travel", "garden")
THINGS = ("shirt", "mug", "lamp", "scarf", "bottle", "notebook", "blanket", "candle")
ADDRESS = {
    "first_name": "Load",
    "last_name": "Test",
    "street_address_1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
# Weights of the iteration kinds, per 100.
MIX = {"browse": 30, "product": 35, "search": 10, "cart": 17, "checkout": 5, "order": 3}

SEED = f"""
import json
from decimal import Decimal
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import RefreshToken
from apps.catalog import services
from apps.catalog.models import ProductVariant
words, things = {WORDS!r}, {THINGS!r}
existing = set(ProductVariant.objects.filter(sku__startswith="LOAD-").values_list("sku", flat=True))
for n in range(1, {PRODUCTS} + 1):
    if f"LOAD-{{n}}" not in existing:
        name = f"{{words[n % len(words)].title()}} {{things[n // len(words) % len(things)]}} {{n}}"
        services.create_product(name=name, variants=[services.VariantSpec(
            sku=f"LOAD-{{n}}", price=Decimal("4.99") + n % 50, initial_stock=10**8)])
User = get_user_model()
tokens = []
for n in range({CUSTOMERS}):
    user, _ = User.objects.get_or_create(
        email=f"load-{{n}}@example.com", defaults={{"name": f"Load {{n}}"}})
    tokens.append(str(RefreshToken.for_user(user).access_token))
print(json.dumps(tokens))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backing_urls() -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL (or their defaults); exits unless both are on loopback."""
    database_url = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ecommerce_load"
    )
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11")
    for url in (database_url, redis_url):
        if urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
            sys.exit(f"load: loopback only, refusing {url}")
    return database_url, redis_url


def stack_env(port: int, sandbox_port: int, web_workers: int, metrics_dir: str) -> dict[str, str]:
    database_url, redis_url = backing_urls()
    return {
        **os.environ,
        "DJANGO_READ_DOT_ENV_FILE": "0",
        "DEBUG": "0",
        "SECRET_KEY": "load-secret-key-0123456789-not-for-production-0123456789",
        "JWT_SIGNING_KEY": "load-jwt-key-0123456789-not-for-production-0123456789",
        "METRICS_TOKEN": "load-metrics-token-0123456789-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CACHE_KEY_PREFIX": f"load{port}",
        "PAYMENT_PROVIDER_URL": f"http://127.0.0.1:{sandbox_port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(web_workers),
        "METRICS_DIR": metrics_dir,
        "ACCESS_LOG": "0",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "0",
        "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": "7200",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
    }


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"load: manage.py {args[0]} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def seed(env: dict[str, str]) -> list[str]:
    manage("ensure_database", env=env)
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    return list(json.loads(manage("shell", "-c", SEED, env=env).strip().splitlines()[-1]))


class Stack:
    """gunicorn, a Celery worker and the payment sandbox, each in its own process group."""

    def __init__(self, env: dict[str, str], metrics_dir: str) -> None:
        self.env = env
        self.logs = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed with the stack)
        worker_env = {**env, "PROMETHEUS_MULTIPROC_DIR": f"{metrics_dir}/worker"}
        self.processes = {
            "sandbox": self._start([PYTHON, "-m", "apps.payments.sandbox", "--host", "127.0.0.1"]),
            "web": self._start(
                [PYTHON, "-m", "gunicorn", "-c", "ecommerce/gunicorn.conf.py", "ecommerce.wsgi"]
            ),
            "worker": self._start(
                [
                    PYTHON, "-m", "celery", "-A", "ecommerce", "worker",
                    "-Q", "default,payments,notifications", "--concurrency", "2",
                    "-n", f"load-{env['PORT']}@%h", "--loglevel", "WARNING",
                ],
                env=worker_env,
            ),
        }  # fmt: skip
        self.base_url = f"http://127.0.0.1:{env['PORT']}"

    def _start(self, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env or self.env,
            stdout=self.logs,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_seconds: float = 60) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    self.fail(f"{name} exited with {process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.fail("the stack was not healthy in time")

    def fail(self, reason: str) -> None:
        self.logs.seek(0)
        logs = self.logs.read()[-3000:]
        self.stop()
        sys.exit(f"load: {reason}\n{logs}")

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU of the process and its live children (gunicorn's or Celery's
        workers), from /proc."""
        pid = self.processes[name].pid
        pids = [pid, *Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        ticks = 0
        for each in pids:
            try:
                fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.logs.close()


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    iterations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed_iterations: int = 0
    dropped: int = 0
    orders: list[tuple[str, str]] = field(default_factory=list)  # (order id, access token)


class Failed(Exception):
    pass


class Visitor:
    """One iteration's requests, timed and checked."""

    def __init__(self, client: httpx.AsyncClient, results: Results) -> None:
        self.client = client
        self.results = results

    async def call(
        self, label: str, method: str, path: str, expect: int, token: str = "", **kwargs: Any
    ) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers, **kwargs)
            status = response.status_code
        except httpx.HTTPError as error:
            status, response = 0, None
            detail = type(error).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.results.latencies[label].append(elapsed_ms)
        if status != expect:
            self.results.errors[label] += 1
            if response is not None:
                detail = response.text[:200]
            if len(self.results.error_samples) < 10:
                self.results.error_samples.append(f"{label}: {status} {detail}")
            raise Failed(label)
        return response.json() if response is not None and response.content else None


async def browse(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    ordering = random.choice(["", "&ordering=price", "&ordering=-price", "&ordering=newest"])
    page = random.randint(1, 8)
    await v.call(
        "GET /api/products", "GET", f"/api/products?page_size=20&page={page}{ordering}", 200
    )


async def product(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    await v.call("GET /api/products/{sku}", "GET", f"/api/products/{random.choice(skus)}", 200)


async def search(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    term = random.choice(THINGS) if random.random() < 0.7 else " ".join(random.sample(WORDS, 2))
    await v.call("GET /api/products?search", "GET", "/api/products", 200, params={"search": term})


async def cart(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    token = (await v.call("POST /api/carts", "POST", "/api/carts", 201))["token"]
    for sku in random.sample(skus, random.randint(1, 2)):
        body = {"sku": sku, "quantity": random.randint(1, 3)}
        await v.call(
            "POST /api/carts/{t}/lines", "POST", f"/api/carts/{token}/lines", 200, json=body
        )
    await v.call("GET /api/carts/{t}", "GET", f"/api/carts/{token}", 200)


async def checkout(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    access = await tokens.get()
    try:
        cart = await v.call("POST /api/carts", "POST", "/api/carts", 201, token=access)
        path = f"/api/carts/{cart['token']}"
        for sku in random.sample(skus, random.randint(1, 3)):
            body = {"sku": sku, "quantity": 1}
            await v.call(
                "POST /api/carts/{t}/lines", "POST", f"{path}/lines", 200, access, json=body
            )
        priced = await v.call(
            "PATCH /api/carts/{t}", "PATCH", path, 200, access, json={"shipping_address": ADDRESS}
        )
        method = priced["shipping_methods"][0]["id"]
        await v.call(
            "PATCH /api/carts/{t}", "PATCH", path, 200, access, json={"shipping_method": method}
        )
        order = await v.call(
            "POST /api/carts/{t}/checkout",
            "POST",
            f"{path}/checkout",
            201,
            access,
            json={"payment_token": "tok_success"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        v.results.orders.append((order["id"], access))
    finally:
        tokens.put_nowait(access)


async def order(v: Visitor, skus: list[str], tokens: asyncio.Queue[str]) -> None:
    access = await tokens.get()
    try:
        body = {
            "items": [{"id": sku, "quantity": 1} for sku in random.sample(skus, 2)],
            "shipping_country": "DE",
            "payment_token": "tok_success",
        }
        placed = await v.call(
            "POST /api/orders",
            "POST",
            "/api/orders",
            201,
            access,
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        v.results.orders.append((placed["id"], access))
    finally:
        tokens.put_nowait(access)


KINDS = {"browse": browse, "product": product, "search": search, "cart": cart}
KINDS |= {"checkout": checkout, "order": order}


async def drive(
    base_url: str, rate: float, duration: int, max_in_flight: int, access_tokens: list[str]
) -> Results:
    results = Results()
    skus = [f"LOAD-{n}" for n in range(1, PRODUCTS + 1)]
    tokens: asyncio.Queue[str] = asyncio.Queue()
    for token in access_tokens:
        tokens.put_nowait(token)
    names, weights = list(MIX), list(MIX.values())
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=15, limits=limits) as client:
        in_flight: set[asyncio.Task[None]] = set()

        async def iteration(kind: str) -> None:
            results.iterations[kind] += 1
            try:
                await KINDS[kind](Visitor(client, results), skus, tokens)
            except Failed:
                results.failed_iterations += 1

        start = time.perf_counter()
        for n in range(int(rate * duration)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= max_in_flight:
                results.dropped += 1
                continue
            task = asyncio.create_task(iteration(random.choices(names, weights)[0]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=30)
    return results


def settle(base_url: str, orders: list[tuple[str, str]], timeout_seconds: float) -> dict[str, Any]:
    """Wait for every order to leave pending_payment; the payment lag from each order's
    history (placed to paid)."""
    statuses: dict[str, str] = {}
    lags: list[float] = []
    deadline = time.monotonic() + timeout_seconds
    pending = list(orders)
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while pending and time.monotonic() < deadline:
            still = []
            for order_id, access in pending:
                answer = client.get(
                    f"/api/orders/{order_id}", headers={"Authorization": f"Bearer {access}"}
                ).json()
                statuses[order_id] = answer["status"]
                if answer["status"] == "pending_payment":
                    still.append((order_id, access))
                elif answer["status"] == "paid":
                    at = {step["to"]: step["at"] for step in answer["history"]}
                    lags.append(seconds_between(at["pending_payment"], at["paid"]))
            pending = still
            if pending:
                time.sleep(1)
    counts: dict[str, int] = defaultdict(int)
    for status in statuses.values():
        counts[status] += 1
    return {"statuses": dict(counts), "lags": lags}


def seconds_between(first: str, second: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


class Database:
    """Commits and connections of the stack's database, from PostgreSQL's statistics."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/")
        self.conn = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password,
            dbname=self.name,
        )
        self.conn.autocommit = True
        self.max_connections = 0

    def commits(self) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [self.name]
            )
            return int(cursor.fetchone()[0])

    def sample_connections(self) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.name],
            )
            self.max_connections = max(self.max_connections, int(cursor.fetchone()[0]))


async def sample_while(database: Database, task: asyncio.Task[Results]) -> None:
    while not task.done():
        database.sample_connections()
        await asyncio.sleep(1)


async def run_with_sampling(database: Database, *args: Any) -> Results:
    task = asyncio.create_task(drive(*args))
    await sample_while(database, task)
    return await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=12.0, help="iterations per second")
    parser.add_argument("--duration", type=int, default=45, help="seconds of arrivals")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait for payments")
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--p95-ms", type=float, default=500)
    parser.add_argument("--p99-ms", type=float, default=1000)
    parser.add_argument("--max-dropped-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the mix")
    args = parser.parse_args()
    if not 0 < args.rate <= MAX_RATE or not 0 < args.duration <= MAX_DURATION_SECONDS:
        sys.exit(f"load: --rate in (0, {MAX_RATE:.0f}], --duration in (0, {MAX_DURATION_SECONDS}]")
    random.seed(args.seed)
    backing_urls()

    metrics_dir = tempfile.mkdtemp(prefix="load-metrics-")
    env = stack_env(free_port(), free_port(), args.web_workers, metrics_dir)
    print(f"load: seeding {env['DATABASE_URL']}", flush=True)
    access_tokens = seed(env)
    stack = Stack(env, metrics_dir)
    try:
        stack.wait_ready()
        # Warm what a running shop has warm (every gunicorn worker's imports and URL
        # resolver, the catalog cache): a second of the mix, not measured.
        asyncio.run(drive(stack.base_url, 10, 2, 8, access_tokens[:10]))
        database = Database(env["DATABASE_URL"])
        cpu_before = {name: stack.cpu_seconds(name) for name in ("web", "worker")}
        commits_before = database.commits()
        print(
            f"load: {args.rate:g} iterations/s for {args.duration} s against {stack.base_url}"
            f" ({args.web_workers} gunicorn workers, 1 Celery worker of 2 processes)",
            flush=True,
        )
        started = time.monotonic()
        results = asyncio.run(
            run_with_sampling(
                database,
                stack.base_url,
                args.rate,
                args.duration,
                args.max_in_flight,
                access_tokens,
            )
        )
        elapsed = time.monotonic() - started
        web_cpu = stack.cpu_seconds("web") - cpu_before["web"]
        commits = database.commits() - commits_before
        settled = settle(stack.base_url, results.orders, args.settle)
        worker_cpu = stack.cpu_seconds("worker") - cpu_before["worker"]
    finally:
        stack.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    report(args, results, settled, elapsed, web_cpu, worker_cpu, commits, database)


def report(
    args: argparse.Namespace,
    results: Results,
    settled: dict[str, Any],
    elapsed: float,
    web_cpu: float,
    worker_cpu: float,
    commits: int,
    database: Database,
) -> None:
    every = [value for values in results.latencies.values() for value in values]
    requests = len(every)
    errors = sum(results.errors.values())
    started = sum(results.iterations.values())
    print(f"\n{'endpoint':32} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for label in sorted(results.latencies):
        values = results.latencies[label]
        print(
            f"{label:32} {len(values):6} {results.errors[label]:6} {percentile(values, 0.5):8.0f}"
            f" {percentile(values, 0.95):8.0f} {percentile(values, 0.99):8.0f}"
        )
    p50, p95, p99 = (percentile(every, f) for f in (0.5, 0.95, 0.99))
    print(f"{'all':32} {requests:6} {errors:6} {p50:8.0f} {p95:8.0f} {p99:8.0f}")
    orders = len(results.orders)
    paid = settled["statuses"].get("paid", 0)
    lags = settled["lags"]
    figures = {
        "rate": args.rate,
        "duration": args.duration,
        "web_workers": args.web_workers,
        "iterations": started,
        "iterations_per_second": round(started / elapsed, 2),
        "requests_per_second": round(requests / elapsed, 2),
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else 1.0,
        "dropped": results.dropped,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
        "mix": dict(results.iterations),
        "orders": orders,
        "orders_by_status": settled["statuses"],
        "payment_lag_p50_s": round(percentile(lags, 0.5), 2),
        "payment_lag_p95_s": round(percentile(lags, 0.95), 2),
        "web_cpu_ms_per_request": round(1000 * web_cpu / requests, 2) if requests else 0,
        "web_cpu_cores_busy": round(web_cpu / elapsed, 2),
        "worker_cpu_ms_per_order": round(1000 * worker_cpu / orders, 1) if orders else 0,
        "db_commits_per_request": round(commits / requests, 2) if requests else 0,
        "db_connections_max": database.max_connections,
    }
    print(
        f"\n{figures['iterations_per_second']} iterations/s, {figures['requests_per_second']}"
        f" requests/s; dropped {results.dropped}; orders {orders}, {settled['statuses']};"
        f" payment lag p50 {figures['payment_lag_p50_s']} s, p95 {figures['payment_lag_p95_s']} s"
    )
    print(
        f"web CPU {figures['web_cpu_ms_per_request']} ms per request"
        f" ({figures['web_cpu_cores_busy']} cores busy); worker CPU"
        f" {figures['worker_cpu_ms_per_order']} ms per order; database"
        f" {figures['db_commits_per_request']} commits per request, at most"
        f" {database.max_connections} connections"
    )
    for sample in results.error_samples:
        print(f"  error: {sample}")
    checks = [
        ("error rate", figures["error_rate"], args.max_error_rate, "{:.2%}"),
        ("p95 ms", p95, args.p95_ms, "{:.0f}"),
        ("p99 ms", p99, args.p99_ms, "{:.0f}"),
        ("dropped iterations", results.dropped / max(1, int(args.rate * args.duration)),
         args.max_dropped_rate, "{:.2%}"),
        ("orders not paid", orders - paid, 0, "{:.0f}"),
    ]  # fmt: skip
    print("\nthresholds:")
    passed = True
    for name, value, limit, shape in checks:
        ok = value <= limit
        passed &= ok
        print(
            f"  {name:20} {shape.format(value):>8} <= {shape.format(limit):>8}"
            f"  {'ok' if ok else 'FAILED'}"
        )
    figures["passed"] = passed
    print(json.dumps(figures))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
