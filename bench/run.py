"""The targets of PERFORMANCE.md, each judged against a ceiling measured in the same run.

    make bench                      # the whole run, a table of targets, exit 1 on a FAIL
    make bench ARGS=--smoke         # (make bench-smoke) a very short run: proves it runs
    .venv/bin/python bench/run.py [--duration 10] [--connections 32] [--full]

What it does, on a throwaway PostgreSQL database (BENCH_DATABASE_URL, default
`ecommerce_bench`: DROPPED and recreated, from a migrated and seeded template kept beside it)
and Redis database (BENCH_REDIS_URL, default db 9: FLUSHED), both on loopback only:

1. The shop, served as shipped (its gunicorn config, --workers sync workers, DEBUG off,
   tracing at its default sampling, metrics on): product detail and list (warm), orders over
   --skus SKUs and on one hot SKU, and checkouts of carts of three lines with a voucher,
   tax and shipping (prepared in the template), saturated by wrk (2 threads, --connections).
   Then the
   latency of detail, list and order create at a constant arrival rate of half the peak each
   reached (p99 < 50 ms). Then the oversell check: a SKU with limited stock hammered with
   orders of 1-3 units until it is sold out (units sold == stock, never more). Then mixed
   traffic (detail, list, orders).
2. The ceilings, as PERFORMANCE.md measured them: a minimal Django project with no middleware
   (bench/ceiling/), served by gunicorn with the same worker count: a DRF APIView returning
   the shop's own detail JSON as static data, and the bare order write (conditional stock
   UPDATE + order row + item row) over as many SKUs and on one hot SKU. Up beside the shop
   in step 1: each ceiling runs just before and just after the targets judged against it,
   and a ratio uses the mean of its two runs.
3. What tracing and metrics cost together: the shop as shipped and the shop with tracing
   and request/SQL metrics off (OTEL_ENABLED=0, METRICS_ENABLED=0), up side by side and
   measured in turn (A B B A A B B A), detail and orders.
   Not in a smoke run, which also skips the warm-ups and stops Celery at its first tasks.
4. A Celery worker (concurrency 2) working off the tasks the orders queued.
5. Stock against its ledger for every SKU the shop sold, and the query count per endpoint
   (bench/audit.py).

Throughput counts 2xx responses only; any other response or socket error in a run (but the
409s of the sell-out, which are its point) fails the whole run, saying where. The RSS of
every gunicorn worker and of every Celery process is sampled twice a second over the whole
run (workers are not recycled: GUNICORN_MAX_REQUESTS=0) and the maximum is judged.
--full serves at least 100,000 requests and works off at least 10,000 tasks before judging
memory (the targets' counts); a default run does fewer and says so.
Needs wrk (`make bench` installs it on Debian as root) and the local PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg2
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lua

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
THREADS = 2
FULL_REQUESTS = 100_000
# Carts the checkout warm-up may take (a few seconds at a few hundred checkouts a second).
WARM_CHECKOUTS = 600
FULL_TASKS = 10_000
WEB_RSS_LIMIT_MIB = 120.0
CELERY_RSS_LIMIT_MIB = 150.0
P99_LIMIT_MS = 50.0
LATE_LIMIT = 0.01  # a constant-rate run with more late sends did not hold its rate
RATE_HELD = 0.95  # nor one that served less than this share of its rate
CELERY_NAME = "bench-worker"
# The ceilings' runs, each measured twice: before and after the targets judged against it.
DRF_CEILING = "ceiling: DRF APIView"
BARE_CEILING = "ceiling: bare order"
HOT_CEILING = "ceiling: bare order, hot"
# Runs of each observability configuration, alternated A B B A A B B A: the cost judged is
# a tenth, and one run of a configuration can differ from another by about that much.
OBSERVABILITY_TURNS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback(url: str) -> str:
    if urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        sys.exit(f"bench: loopback only, refusing {url}")
    return url


@dataclass
class Config:
    database_url: str
    redis_url: str
    duration: int
    connections: int
    workers: int
    skus: int
    smoke: bool
    full: bool
    sampler_ratio: str | None
    drain_seconds: int
    warmup: int

    @property
    def checkout_carts(self) -> int:
        """Carts ready for checkout in the template: one per checkout request, warm-ups
        included, with room to spare (a checkout rate is a fraction of an order rate)."""
        return 200 if self.smoke else 150 * self.duration + WARM_CHECKOUTS + 1000

    @property
    def database(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def admin_connection(self) -> Any:
        parts = urlsplit(self.database_url)
        conn = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password,
            dbname="postgres",
        )
        conn.autocommit = True
        return conn


def shop_env(config: Config, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DEBUG="0",
        SECRET_KEY="bench-secret-key-0123456789-not-for-production-0123456789",
        JWT_SIGNING_KEY="bench-jwt-key-0123456789-not-for-production-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=config.database_url,
        REDIS_URL=config.redis_url,
        CELERY_BROKER_URL=config.redis_url,
        BENCH_ENDPOINTS_ENABLED="1",
        ACCESS_LOG="0",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY=str(config.workers),
        # One worker lives through the whole run, so its memory is measured, not reset.
        GUNICORN_MAX_REQUESTS="0",
        JWT_ACCESS_TOKEN_LIFETIME_SECONDS="7200",
        # Every request comes from one address, which the shop would rightly limit.
        RATE_LIMIT_ENABLED="0",
        ALLOW_IN_PROCESS_PAYMENT_SANDBOX="1",
        METRICS_PUBLIC="1",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )
    if config.sampler_ratio is not None:
        env["OTEL_TRACES_SAMPLER_RATIO"] = config.sampler_ratio
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"bench: manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


TEMPLATE_SEED = """
from decimal import Decimal
from apps.catalog import services
for prefix in ("bench", "bare"):
    for n in range(1, {skus} + 1):
        services.create_product(name=f"{{prefix.title()}} {{n}}", variants=[services.VariantSpec(
            sku=f"{{prefix}}{{n}}", price=Decimal("9.99") + n, initial_stock=10**8)])
"""

# Customers with a cart each, ready for checkout: three lines, a German address, the demo
# voucher (10% off, once per customer) and the first shipping method offered. The first
# cart is made through the checkout services, which validate all of it; the others copy
# it row for row (a checkout prices its cart again, and refuses one with a problem).
CHECKOUT_SEED = """
from django.contrib.auth import get_user_model
from apps.checkout import selectors as carts, services as checkout
from apps.checkout.models import Cart, CartLine
User = get_user_model()
users = User.objects.bulk_create(
    [User(email=f"checkout{{n}}@example.com", name="Checkout") for n in range({carts})])
cart, _ = checkout.create_cart(user=users[0])
for n in (1, 2, 3):
    cart = checkout.add_line(cart=cart, sku=f"bench{{n}}", quantity=1)
cart = checkout.update_cart(cart=cart, voucher_code="WELCOME10", shipping_address=dict(
    first_name="Bench", last_name="Checkout", street_address_1="Unter den Linden 1",
    city="Berlin", postal_code="10117", country="DE"))
method = carts.shipping_methods_for(cart)[0]
cart = checkout.update_cart(cart=cart, shipping_method_id=method.method_id)
lines = list(cart.lines.all())
copies = Cart.objects.bulk_create([Cart(
    user=user, currency=cart.currency, country=cart.country,
    shipping_address=cart.shipping_address, billing_address=cart.billing_address,
    shipping_method_id=cart.shipping_method_id, voucher_code=cart.voucher_code)
    for user in users[1:]])
CartLine.objects.bulk_create([CartLine(
    cart=copy, variant_id=line.variant_id, quantity=line.quantity,
    price_when_added=line.price_when_added, currency_when_added=line.currency_when_added)
    for copy in copies for line in lines])
"""

RUN_SEED = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from apps.checkout.models import Cart
from apps.inventory import selectors as inventory_selectors
from apps.inventory.models import Stock
User = get_user_model()
user, _ = User.objects.get_or_create(email="bench@example.com", defaults={"name": "Bench"})
bare = list(Stock.objects.filter(variant__sku__startswith="bare",
    warehouse=inventory_selectors.default_warehouse()).order_by("variant_id")
    .values_list("pk", flat=True))
checkouts = [[cart.token, str(AccessToken.for_user(cart.user))] for cart in Cart.objects.filter(
    status="open", user__email__startswith="checkout").select_related("user").order_by("pk")]
print(json.dumps({"token": str(RefreshToken.for_user(user).access_token), "user_id": user.pk,
                  "bare_stock_ids": bare, "checkouts": checkouts}))
"""

SELLOUT_SEED = """
from decimal import Decimal
from apps.catalog import services
services.create_product(name="Sell-out", variants=[services.VariantSpec(
    sku="sellout1", price=Decimal("5.00"), initial_stock={stock})])
"""


def prepare_database(config: Config, env: dict[str, str], extra_seed: str = "") -> dict[str, Any]:
    """A fresh database cloned from a template that is migrated and seeded once per state
    of the migrations and of the seed (building it is most of a first run's time)."""
    migrations = sorted(
        str(p.relative_to(ROOT))
        for pattern in ("apps/*/migrations/*.py", "ecommerce/**/migrations/*.py")
        for p in ROOT.glob(pattern)
    )
    digest = hashlib.sha1(usedforsecurity=False)
    template_seed = TEMPLATE_SEED.format(skus=config.skus) + CHECKOUT_SEED.format(
        carts=config.checkout_carts
    )
    digest.update(template_seed.encode())
    for name in migrations:
        digest.update(name.encode() + (ROOT / name).read_bytes())
    # One template per SKU count (a smoke and a full run keep theirs); a stale one is dropped.
    kind = f"{config.database}_tpl{config.skus}_"
    template = f"{kind}{digest.hexdigest()[:10]}"
    conn = config.admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            [kind.replace("_", r"\_") + "%"],
        )
        existing = {row[0] for row in cursor.fetchall()}
        for stale in existing - {template}:
            cursor.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        if template not in existing:
            print(f"bench: building the template database {template} (once)", flush=True)
            cursor.execute(f'CREATE DATABASE "{template}"')
            parts = urlsplit(config.database_url)
            template_env = {
                **env,
                "DATABASE_URL": urlunsplit(parts._replace(path=f"/{template}")),
            }
            try:
                manage("migrate", "--noinput", env=template_env)
                manage("seed_demo", env=template_env)
                manage("shell", "-c", template_seed, env=template_env)
            except BaseException:
                cursor.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                raise
        cursor.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{config.database}" TEMPLATE "{template}"')
    conn.close()
    redis.Redis.from_url(config.redis_url).flushdb()
    seeded = manage("shell", "-c", extra_seed + RUN_SEED, env=env)
    return dict(json.loads(seeded.strip().splitlines()[-1]))


# Where a run's CPU went, by process name: the shop (its gunicorn workers, any Python),
# the database and Redis. Printed per response beside each run, so a figure says whether
# Python or PostgreSQL is the limit, and what the ceilings spend on the same request.
CPU_KINDS = {"postgres": "postgres", "redis-server": "redis"}


def cpu_seconds_by_process() -> dict[int, tuple[str, float]]:
    """{pid: (kind, CPU seconds used so far)} of every process of a kind in CPU_KINDS, and
    of every Python or gunicorn process but this one ("app"), from /proc: its own and that
    of the children it has reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        kind = CPU_KINDS.get(name) or ("app" if name.startswith(("python", "gunicorn")) else None)
        if kind is None:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # Its own CPU and that of its children it has reaped: a database connection that
        # closed during a run is counted in the postmaster's.
        used[int(entry.name)] = (kind, sum(int(value) for value in fields[11:15]) / tick)
    return used


def cpu_used_since(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds by kind since `before`, process by process: one that started meanwhile
    counts whole; one that exited meanwhile counts in its parent (see above)."""
    used: dict[str, float] = {}
    for pid, (kind, seconds) in cpu_seconds_by_process().items():
        earlier = before.get(pid)
        spent = seconds - earlier[1] if earlier and earlier[0] == kind else seconds
        used[kind] = used.get(kind, 0.0) + spent
    return used


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class RssSampler:
    """The RSS of a process's children (and of the process itself if asked), twice a second
    in a thread, kept per pid: the maximum over the run is what is judged."""

    def __init__(self, pid: int, *, include_parent: bool) -> None:
        self.pid = pid
        self.include_parent = include_parent
        self.max_by_pid: dict[int, float] = {}
        self.first_by_pid: dict[int, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.5)

    def sample(self) -> None:
        pids = children(self.pid) + ([self.pid] if self.include_parent else [])
        for pid in pids:
            size = rss_mib(pid)
            if size is None:
                continue
            self.first_by_pid.setdefault(pid, size)
            self.max_by_pid[pid] = max(size, self.max_by_pid.get(pid, 0.0))
        self.samples += 1

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    @property
    def max_mib(self) -> float:
        return max(self.max_by_pid.values(), default=0.0)


class Service:
    """A process group on loopback (gunicorn or Celery), its output kept for a failure."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def wait_http(self, url: str, timeout_seconds: float = 60) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        output = self.output()
        self.stop()
        sys.exit(f"bench: {self.name} did not start\n{output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# The shipped deployments put ingress-nginx in front of gunicorn (deploy/), which reads a
# whole request before it opens an upstream connection: a sync worker never waits on a
# client. wrk opens its next connection as soon as the last one closes and sends on it only
# at its slot, so at a constant rate a worker that accepted such a connection sat idle until
# then (up to connections/rate seconds) while requests queued: p99 of 880 ms at 20 orders/s
# straight to gunicorn, 21 ms through nginx. The constant-rate runs go through this nginx.
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
    }}
  }}
}}
"""


def buffering_proxy(upstream: int, workdir: Path) -> tuple[Service, int]:
    """nginx on loopback in front of the shop at `upstream`, as the ingress is in front of
    it when deployed: (the service, its port)."""
    if shutil.which("nginx") is None:
        sys.exit("bench: nginx is missing (make bench installs it on Debian as root)")
    directory = workdir / "nginx"
    directory.mkdir()
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, upstream=upstream))
    service = Service("nginx", ["nginx", "-c", str(conf), "-p", str(directory)], dict(os.environ))
    service.wait_http(f"http://127.0.0.1:{port}/health/live")
    return service, port


def gunicorn(name: str, app: str, port: int, env: dict[str, str], config: Config) -> Service:
    if app == "ecommerce.wsgi":
        command = ["-c", "ecommerce/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", app]
        health = "/health/live"
    else:
        # The ceiling: plain sync workers, as many, no access log, no hooks.
        command = ["-w", str(config.workers), "-b", f"127.0.0.1:{port}", "--keep-alive", "5", app]
        health = "/drf"
    service = Service(name, [PYTHON, "-m", "gunicorn", *command], env)
    service.wait_http(f"http://127.0.0.1:{port}{health}")
    return service


@dataclass
class Result:
    """One wrk run, from the result line of bench/lua.py."""

    name: str
    requests: int
    seconds: float
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p99_ms: float
    late: int
    rate: float | None = None  # the constant arrival rate asked for, if any
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by kind, over the run

    def cpu_ms_per_response(self) -> str:
        """Where the run's CPU went, per response (refusals too: a sell-out's 409s cost CPU
        as well): "cpu ms/response: app 12.70, postgres 4.90, redis 0.40"."""
        if not self.requests or not self.cpu_seconds:
            return ""
        parts = [
            f"{kind} {1000 * self.cpu_seconds.get(kind, 0.0) / self.requests:.2f}"
            for kind in ("app", "postgres", "redis")
        ]
        return f"  cpu ms/response: {', '.join(parts)}"

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rps(self) -> float:
        """2xx responses per second: errors never count."""
        return self.ok / self.seconds if self.seconds else 0.0

    def unexpected(self, allowed: set[int], *, smoke: bool) -> str | None:
        """Why this run fails the whole benchmark, if it does. A smoke run of a second may
        see no response complete on a busy machine: that alone does not fail it."""
        bad = {s: n for s, n in self.statuses.items() if not 200 <= s < 300 and s not in allowed}
        problems = [f"{n} x HTTP {s}" for s, n in sorted(bad.items())]
        if self.socket_errors:
            problems.append(f"{self.socket_errors} socket errors")
        if not self.ok and not smoke:
            problems.append("no 2xx response at all")
        return ", ".join(problems) or None


@dataclass
class Runner:
    config: Config
    results: dict[str, Result] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    served_by: dict[int, int] = field(default_factory=dict)  # port -> requests, warm-ups too
    health_paths: dict[int, str] = field(default_factory=dict)  # port -> a cheap GET

    def settle(self, port: int) -> None:
        """Wait out the requests wrk left queued in the server when it stopped (gunicorn still
        answers them): one probe per worker, twice, all answered means the backlog is gone,
        so the next run does not start behind the last one's queue."""
        path = self.health_paths[port]
        with ThreadPoolExecutor(max_workers=2 * self.config.workers) as pool:
            list(
                pool.map(
                    lambda _: httpx.get(f"http://127.0.0.1:{port}{path}", timeout=120),
                    range(2 * self.config.workers),
                )
            )

    def warm(self, port: int, *runs: tuple[str, str, dict[str, str] | None]) -> None:
        """Fresh workers import, connect and fill caches on their first requests: a short
        unrecorded run of each scenario first, so no figure pays for that."""
        if self.config.smoke:
            return  # a smoke run judges no figure
        for path, script, env in runs:
            self.wrk(
                "warm-up",
                port,
                path,
                script=script,
                env=env,
                record=False,
                duration=self.config.warmup,
            )

    def wrk(
        self,
        name: str,
        port: int,
        path: str,
        *,
        script: str = "",
        env: dict[str, str] | None = None,
        rate: float | None = None,
        duration: int | None = None,
        allowed: frozenset[int] = frozenset(),
        record: bool = True,
    ) -> Result:
        duration = duration or self.config.duration
        source = lua.COUNTING + script
        wrk_env = {**os.environ, **(env or {}), "BENCH_THREADS": str(THREADS)}
        if rate is not None:
            source += lua.CONSTANT_RATE
            wrk_env["BENCH_RATE"] = f"{rate:.3f}"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(source)
        command = [
            "wrk",
            f"-t{THREADS}",
            f"-c{self.config.connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            file.name,
            f"http://127.0.0.1:{port}{path}",
        ]
        cpu_before = cpu_seconds_by_process()
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, env=wrk_env, timeout=duration + 60
            )
        finally:
            os.unlink(file.name)
        cpu_used = cpu_used_since(cpu_before)
        line = next(
            (x for x in completed.stdout.splitlines() if x.startswith(lua.RESULT_MARK)), None
        )
        if completed.returncode or line is None:
            sys.exit(f"bench: wrk failed on {name}:\n{completed.stdout}\n{completed.stderr}")
        data = json.loads(line[len(lua.RESULT_MARK) :])
        result = Result(
            name=name,
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            statuses={int(k): v for k, v in data["statuses"].items()},
            socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            late=data["late"],
            rate=rate,
            cpu_seconds=cpu_used,
        )
        self.served_by[port] = self.served_by.get(port, 0) + result.requests
        self.settle(port)
        if not record:
            return result
        problem = result.unexpected(set(allowed), smoke=self.config.smoke)
        if problem:
            self.failures.append(f"{name}: {problem} (of {result.requests} requests)")
        self.results[name] = result
        print(
            f"  {name:28} {result.rps:8.0f} 2xx/s  p50 {result.p50_ms:6.1f}  "
            f"p99 {result.p99_ms:6.1f} ms  {result.requests} requests"
            + (f"  (rate {rate:.0f}/s, {result.late} late)" if rate is not None else "")
            + result.cpu_ms_per_response(),
            flush=True,
        )
        return result


def celery_tasks_done(broker_url: str) -> int | None:
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        stats = app.control.inspect(timeout=1.0).stats() or {}
    except Exception:
        return None
    finally:
        app.close()
    for name, figures in stats.items():
        if name.startswith(CELERY_NAME):
            return sum(figures.get("total", {}).values())
    return None


def work_off_tasks(config: Config, env: dict[str, str]) -> tuple[int, RssSampler]:
    """A Celery worker (concurrency 2) on what the orders queued, its processes sampled: until
    its count of tasks stops growing (and reaches --full's count), at most --drain-seconds
    (600 with --full) from its first answer."""
    worker = Service(
        "celery",
        [
            PYTHON, "-m", "celery", "-A", "ecommerce", "worker",
            "-Q", "default,payments,notifications", "--concurrency", "2",
            "-n", f"{CELERY_NAME}@%h", "--loglevel", "WARNING",
        ],
        env,
    )  # fmt: skip
    sampler = RssSampler(worker.process.pid, include_parent=True)
    limit = 600 if config.full else config.drain_seconds
    started, answered = time.monotonic(), None
    done, previous, still = 0, -1, 0
    try:
        while answered is None or time.monotonic() - answered < limit:
            time.sleep(1)
            if worker.process.poll() is not None:
                sys.exit(f"bench: the Celery worker exited\n{worker.output()}")
            count = celery_tasks_done(config.redis_url)
            if count is None:
                if time.monotonic() - started > 60:
                    sys.exit(f"bench: the Celery worker did not answer\n{worker.output()}")
                continue
            answered = answered or time.monotonic()
            done = count
            still = still + 1 if done == previous else 0
            previous = done
            if still >= 2 and (not config.full or done >= FULL_TASKS):
                break
            if config.smoke and done:
                break  # it runs tasks: all a smoke run asks
    finally:
        sampler.stop()
        worker.stop()
    return done, sampler


def audit(env: dict[str, str], token: str, checkout: tuple[str, str]) -> dict[str, Any]:
    """bench/audit.py's findings; `checkout` is a cart no run took (token, access token)."""
    result = subprocess.run(
        [PYTHON, "bench/audit.py"],
        cwd=ROOT,
        env={**env, "BENCH_TOKEN": token, "BENCH_CHECKOUT": " ".join(checkout)},
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"bench: bench/audit.py failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@dataclass
class Row:
    target: str
    figure: str
    baseline: str
    ratio: str
    needed: str
    passed: bool | None  # None: not judged (informational, or not measured here)
    note: str = ""


def mean_rps(runner: Runner, name: str, runs: int) -> float:
    """The mean rate of the runs named "`name` #1" to "`name` #`runs`"."""
    return sum(runner.results[f"{name} #{turn}"].rps for turn in range(1, runs + 1)) / runs


def ceiling_rps(runner: Runner, ceiling: str) -> float:
    """A ceiling's rate: the mean of its run before and its run after its targets'."""
    return mean_rps(runner, ceiling, 2)


def throughput_row(runner: Runner, target: str, measured: str, ceiling: str, needed: float) -> Row:
    rps, baseline = runner.results[measured].rps, ceiling_rps(runner, ceiling)
    ratio = rps / baseline if baseline else 0.0
    return Row(
        target,
        f"{rps:,.0f}/s",
        f"{baseline:,.0f}/s",
        f"{ratio:.2f}",
        f">= {needed:.2f}",
        ratio >= needed,
    )


def observability_row(runner: Runner, what: str) -> Row:
    """Tracing and metrics together: the as-shipped runs' rate over the runs without both."""
    observed, unobserved = (
        mean_rps(runner, f"{what}, {name}", OBSERVABILITY_TURNS)
        for name in ("observed", "unobserved")
    )
    ratio = observed / unobserved if unobserved else 0.0
    return Row(
        f"{what}: tracing + metrics cost <= 10%",
        f"{observed:,.0f}/s",
        f"{unobserved:,.0f}/s",
        f"{ratio:.2f}",
        ">= 0.90",
        ratio >= 0.90,
        f"A B B A A B B A, the mean of {OBSERVABILITY_TURNS} runs each",
    )


def latency_row(runner: Runner, target: str, name: str, peak: str) -> Row:
    result = runner.results[name]
    # Each thread's schedule starts at a random point of its first interval: a few requests
    # short of rate x seconds is the schedule, not the server.
    due = RATE_HELD * (result.rate or 0) * result.seconds - 2 * THREADS
    held = result.ok > 0 and result.ok >= due and result.late <= LATE_LIMIT * result.requests
    note = f"at {result.rate:,.0f}/s = half of {runner.results[peak].rps:,.0f}/s"
    if not held:
        note += f"; RATE NOT HELD (served {result.rps:,.0f}/s, {result.late} late)"
    return Row(
        target,
        f"p99 {result.p99_ms:.1f} ms",
        "",
        "",
        f"< {P99_LIMIT_MS:.0f} ms",
        held and result.p99_ms < P99_LIMIT_MS,
        note,
    )


def print_table(rows: list[Row], *, smoke: bool) -> None:
    header = f"{'target':38} {'figure':>16} {'ceiling':>10} {'ratio':>6} {'needed':>10}  verdict"
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        verdict = "-" if row.passed is None else ("PASS" if row.passed else "FAIL")
        if smoke and row.passed is not None:
            verdict = f"({verdict})"
        print(
            f"{row.target:38} {row.figure:>16} {row.baseline:>10} {row.ratio:>6} "
            f"{row.needed:>10}  {verdict:7} {row.note}".rstrip()
        )


def run(config: Config) -> int:
    started = time.monotonic()

    def phase(title: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {title}", flush=True)

    base = shop_env(config)
    # A smoke run's sell-out stock is known now: one process start fewer.
    smoke_stock = 10
    seed = prepare_database(
        config, base, SELLOUT_SEED.format(stock=smoke_stock) if config.smoke else ""
    )
    phase("database ready")
    runner = Runner(config)
    token = seed["token"]
    order_env = {"BENCH_TOKEN": token, "BENCH_PREFIX": "bench", "BENCH_SKUS": str(config.skus)}
    hot_env = {**order_env, "BENCH_SKUS": "1"}
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))

    # 1. The shop as shipped, and 2. the ceilings as PERFORMANCE.md measured them (no
    # middleware, the same worker count), both up while the throughput targets run: each
    # ceiling is measured before and after the targets judged against it (C S S C), so the
    # drift of a shared machine over the phase weighs on both sides of a ratio alike.
    port = free_port()
    shop = gunicorn(
        "shop",
        "ecommerce.wsgi",
        port,
        {**base, "METRICS_DIR": str(workdir / "metrics")},
        config,
    )
    runner.health_paths[port] = "/health/live"
    sampler = RssSampler(shop.process.pid, include_parent=False)
    ceiling_server: Service | None = None
    try:
        detail = httpx.get(f"http://127.0.0.1:{port}/api/products/bench1", timeout=10)
        detail.raise_for_status()
        static_json = workdir / "detail.json"
        static_json.write_bytes(detail.content)
        ceiling_port = free_port()
        ceiling_server = gunicorn(
            "ceiling",
            "bench.ceiling.wsgi",
            ceiling_port,
            {
                **base,
                "DJANGO_SETTINGS_MODULE": "bench.ceiling.settings",
                "BENCH_STATIC_JSON": str(static_json),
                "BENCH_BARE_STOCK_IDS": ",".join(map(str, seed["bare_stock_ids"])),
                "BENCH_USER_ID": str(seed["user_id"]),
            },
            config,
        )
        runner.health_paths[ceiling_port] = "/drf"
        phase(
            "the shop, as shipped, each target between two runs of its ceiling "
            "(bench/ceiling, no middleware); then at half the peak:"
        )
        runner.warm(
            port,
            ("/bench/drf", "", None),
            ("/api/products/bench1", "", None),
            ("/api/products?page_size=20", "", None),
            ("/", lua.ORDER, order_env),
        )
        runner.warm(
            ceiling_port,
            ("/drf", "", None),
            (f"/bare-order?skus={config.skus}", lua.POST, None),
        )
        bare_many, bare_hot = f"/bare-order?skus={config.skus}", "/bare-order?skus=1"
        runner.wrk(f"{DRF_CEILING} #1", ceiling_port, "/drf")
        runner.wrk("stack: /bench/drf", port, "/bench/drf")
        runner.wrk("detail", port, "/api/products/bench1")
        runner.wrk("list (20)", port, "/api/products?page_size=20")
        runner.wrk(f"{DRF_CEILING} #2", ceiling_port, "/drf")
        runner.wrk(f"{BARE_CEILING} #1", ceiling_port, bare_many, script=lua.POST)
        runner.wrk(f"{HOT_CEILING} #1", ceiling_port, bare_hot, script=lua.POST)
        runner.wrk("orders", port, "/", script=lua.ORDER, env=order_env)
        runner.wrk("orders, hot SKU", port, "/", script=lua.ORDER, env=hot_env)
        # Checkouts: each request a cart of its own; the warm-up takes the first ones.
        warm_carts = 0 if config.smoke else WARM_CHECKOUTS
        for name, chunk in (
            ("checkouts-warm.txt", seed["checkouts"][:warm_carts]),
            # The last cart is the audit's (its query count).
            ("checkouts.txt", seed["checkouts"][warm_carts:-1]),
        ):
            (workdir / name).write_text("".join(f"{cart} {access}\n" for cart, access in chunk))
        runner.warm(
            port, ("/", lua.CHECKOUT, {"BENCH_CHECKOUTS": str(workdir / "checkouts-warm.txt")})
        )
        runner.wrk(
            "checkout (3 lines, voucher)",
            port,
            "/",
            script=lua.CHECKOUT,
            env={"BENCH_CHECKOUTS": str(workdir / "checkouts.txt")},
        )
        runner.wrk(f"{HOT_CEILING} #2", ceiling_port, bare_hot, script=lua.POST)
        runner.wrk(f"{BARE_CEILING} #2", ceiling_port, bare_many, script=lua.POST)
        ceiling_server.stop()
        ceiling_server = None
        proxy, proxy_port = buffering_proxy(port, workdir)
        runner.health_paths[proxy_port] = "/health/live"
        try:
            for name, path, script, env in (
                ("detail", "/api/products/bench1", "", None),
                ("list (20)", "/api/products?page_size=20", "", None),
                ("orders", "/", lua.ORDER, order_env),
            ):
                runner.wrk(
                    f"{name} @ half peak",
                    proxy_port,
                    path,
                    script=script,
                    env=env,
                    rate=max(runner.results[name].rps / 2, 1.0),
                    # Enough requests for a p99 (a smoke run judges none).
                    duration=config.duration if config.smoke else max(config.duration, 3),
                )
        finally:
            proxy.stop()
            # What nginx passed on, the shop served.
            runner.served_by[port] += runner.served_by.pop(proxy_port, 0)
        # Sold out in about half of its run at the hot rate just measured.
        hot_rate = runner.results["orders, hot SKU"].rps
        # Orders of 1-3 units: two on average.
        if config.smoke:
            stock = smoke_stock
        else:
            stock = max(10, int(hot_rate * 2 * config.duration / 2))
            manage("shell", "-c", SELLOUT_SEED.format(stock=stock), env=base)
        sellout_env = {**order_env, "BENCH_PREFIX": "sellout", "BENCH_SKUS": "1"}
        sellout = runner.wrk(
            "sell-out (1-3 units)",
            port,
            "/",
            script=lua.ORDER,
            env={**sellout_env, "BENCH_MAX_QUANTITY": "3"},
            allowed=frozenset({409}),
            duration=max(config.duration, 2 if config.smoke else 3),
        )
        # Full listing pages only: products are the bench and bare SKUs and seed_demo's 22.
        pages = max(1, min(5, (2 * config.skus + 22) // 20))
        mixed_env = {**order_env, "BENCH_PAGES": str(pages)}
        mixed_runs = 0
        while True:
            runner.wrk(f"mixed #{mixed_runs + 1}", port, "/", script=lua.MIXED, env=mixed_env)
            mixed_runs += 1
            if not config.full or runner.served_by[port] >= FULL_REQUESTS:
                break
    finally:
        sampler.stop()
        shop.stop()
        if ceiling_server is not None:
            ceiling_server.stop()
    served = runner.served_by.get(port, 0)

    # 3. What tracing and metrics cost (not in a smoke run): the shop as shipped and the
    # shop without both, up side by side and measured in turn, A B B A A B B A, so that the
    # drift of a shared machine over the phase weighs on both alike.
    if not config.smoke:
        phase("observability: as shipped (A) and without tracing and metrics (B), A B B A A B B A:")
        servers: dict[str, tuple[int, Service]] = {}
        try:
            for name, extra in (
                ("observed", {}),
                ("unobserved", {"OTEL_ENABLED": "0", "METRICS_ENABLED": "0"}),
            ):
                port = free_port()
                env = {**base, **extra, "METRICS_DIR": str(workdir / f"metrics-{name}")}
                server = gunicorn(f"shop-{name}", "ecommerce.wsgi", port, env, config)
                servers[name] = (port, server)
                runner.health_paths[port] = "/health/live"
                runner.warm(port, ("/api/products/bench1", "", None), ("/", lua.ORDER, order_env))
            for turn in range(OBSERVABILITY_TURNS):
                order = ("observed", "unobserved")
                for name in order[:: -1 if turn % 2 else 1]:
                    port = servers[name][0]
                    runner.wrk(f"detail, {name} #{turn + 1}", port, "/api/products/bench1")
                    runner.wrk(
                        f"orders, {name} #{turn + 1}", port, "/", script=lua.ORDER, env=order_env
                    )
        finally:
            for _port, server in servers.values():
                server.stop()

    # 4. Celery works off the queued tasks.
    phase("a Celery worker works off the queued tasks:")
    tasks, celery_sampler = work_off_tasks(
        config, {**base, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics-worker")}
    )
    print(f"  {tasks} tasks done", flush=True)

    # 5. Stock, ledger, query counts.
    phase("audit: stock against ledger, queries per request")
    audited = audit(base, token, checkout=seed["checkouts"][-1])
    check, queries = audited["check"], audited["queries"]
    shutil.rmtree(workdir, ignore_errors=True)

    # The verdicts.
    ceiling, bare, hot = DRF_CEILING, BARE_CEILING, HOT_CEILING
    rows = [
        throughput_row(runner, "product detail, warm", "detail", ceiling, 0.90),
        throughput_row(runner, "product list (20), warm", "list (20)", ceiling, 0.60),
        throughput_row(runner, f"orders over {config.skus:,} SKUs", "orders", bare, 0.50),
        throughput_row(runner, "orders on one hot SKU", "orders, hot SKU", hot, 0.40),
        throughput_row(
            runner,
            "checkout (3 lines, voucher, shipping)",
            "checkout (3 lines, voucher)",
            bare,
            0.35,
        ),
        *(
            [
                Row(f"{what}: tracing + metrics cost <= 10%", "not run (smoke)", "", "", "", None)
                for what in ("detail", "orders")
            ]
            if config.smoke
            else [observability_row(runner, what) for what in ("detail", "orders")]
        ),
        latency_row(runner, "detail p99 at half the peak", "detail @ half peak", "detail"),
        latency_row(runner, "list p99 at half the peak", "list (20) @ half peak", "list (20)"),
        latency_row(runner, "order create p99 at half the peak", "orders @ half peak", "orders"),
    ]
    sold, orders = check["sellout_units_sold"], check["sellout_orders"]
    created = sellout.statuses.get(201, 0)
    oversold = sold > stock or check["sellout_stock"] != stock - sold or created != orders
    sold_out = sold == stock and check["sellout_stock"] == 0 and sellout.statuses.get(409, 0) > 0
    rows.append(
        Row(
            "zero oversell (stock sells out)",
            f"{sold}/{stock} sold",
            "",
            "",
            "== stock",
            not oversold and (sold_out or config.smoke),
            f"{orders} orders, {created} x 201, {sellout.statuses.get(409, 0)} x 409, "
            f"stock left {check['sellout_stock']}" + ("" if sold_out else "; NOT SOLD OUT"),
        )
    )
    rows.append(
        Row(
            "stock == ledger (every SKU sold)",
            f"{check['ledger_mismatch_count']} mismatches",
            "",
            "",
            "0",
            check["ledger_mismatch_count"] == 0,
            f"over {check['stock_rows']} stock rows " + "; ".join(check["ledger_mismatches"]),
        )
    )
    short_web = served < FULL_REQUESTS
    rows.append(
        Row(
            "web worker RSS, max over the run",
            f"{sampler.max_mib:.0f} MiB",
            "",
            "",
            f"< {WEB_RSS_LIMIT_MIB:.0f} MiB",
            sampler.max_mib < WEB_RSS_LIMIT_MIB,
            f"{len(sampler.max_by_pid)} workers, {sampler.samples} samples, "
            f"{served:,} requests" + (" (< 100,000: rerun with --full)" if short_web else ""),
        )
    )
    rows.append(
        Row(
            "Celery process RSS, max over the run",
            f"{celery_sampler.max_mib:.0f} MiB",
            "",
            "",
            f"< {CELERY_RSS_LIMIT_MIB:.0f} MiB",
            celery_sampler.max_mib < CELERY_RSS_LIMIT_MIB and tasks > 0,
            f"{len(celery_sampler.max_by_pid)} processes, {celery_sampler.samples} samples, "
            f"{tasks:,} tasks" + (" (< 10,000: rerun with --full)" if tasks < FULL_TASKS else ""),
        )
    )
    drf_ceiling = ceiling_rps(runner, DRF_CEILING)
    stack = runner.results["stack: /bench/drf"].rps / drf_ceiling
    rows.append(
        Row(
            "(info) DRF APIView through the stack",
            f"{runner.results['stack: /bench/drf'].rps:,.0f}/s",
            f"{drf_ceiling:,.0f}/s",
            f"{stack:.2f}",
            "",
            None,
        )
    )
    cold = audited["cold_key_db_reads"]
    rows.append(
        Row(
            "cold key: 50 concurrent first reads",
            f"{cold} DB reads",
            "",
            "",
            "<= 2",
            cold <= 2,
            "50 threads, one product, cache cleared (bench/audit.py)",
        )
    )

    print_table(rows, smoke=config.smoke)
    print(
        "\nqueries per request (bench/audit.py): "
        + ", ".join(f"{name} {count}" for name, count in queries.items())
    )
    elapsed = time.monotonic() - started
    print(f"run: {elapsed:.0f} s, {served:,} requests to the shop, {tasks:,} tasks")
    if runner.failures:
        print("\nFAILED: responses other than 2xx (throughput counts 2xx only):")
        for failure in runner.failures:
            print(f"  {failure}")
    if config.smoke:
        # The smoke proves the harness runs: correctness fails it, figures do not.
        broken = runner.failures or oversold or check["ledger_mismatch_count"]
        print("\nsmoke: " + ("FAILED" if broken else "the harness ran (figures not judged)"))
        return 1 if broken else 0
    failed = [row.target for row in rows if row.passed is False]
    if failed or runner.failures:
        print(
            f"\nFAIL: {len(failed)} targets failed"
            + (f" ({', '.join(failed)})" if failed else "")
            + (", and some responses were errors" if runner.failures else "")
        )
        return 1
    print("\nPASS: every measured target")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per saturated run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--drain-seconds", type=int, default=20)
    parser.add_argument(
        "--sampler-ratio", default=None, help="OTEL_TRACES_SAMPLER_RATIO (default: as shipped)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="1-s runs, 20 SKUs: proves it runs")
    mode.add_argument("--full", action="store_true", help="100,000 requests and 10,000 tasks")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing: apt-get install -y wrk (make bench installs it as root)")
    config = Config(
        database_url=loopback(
            os.environ.get(
                "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ecommerce_bench"
            )
        ),
        redis_url=loopback(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")),
        duration=1 if args.smoke else args.duration,
        connections=8 if args.smoke else args.connections,
        workers=2 if args.smoke else args.workers,
        skus=20 if args.smoke else args.skus,
        smoke=args.smoke,
        full=args.full,
        sampler_ratio=args.sampler_ratio,
        drain_seconds=3 if args.smoke else args.drain_seconds,
        warmup=1 if args.smoke else 2,
    )
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
