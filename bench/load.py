"""A shop's mixed traffic against one web pod, one worker and the database: a bounded,
constant-arrival-rate load scenario run with Locust, with thresholds (docs/capacity.md).

    .venv/bin/python bench/load.py [--rate 12] [--duration 45] [--web-workers 2] [--users 64]
    make load RATE=12 DURATION=45

Starts what one pod of each kind runs, on free loopback ports, with DEBUG off: gunicorn with
the project's config (ecommerce/gunicorn.conf.py, WEB_CONCURRENCY sync workers), one Celery
worker (default, payments and notifications queues, concurrency 2) and the payment sandbox.
Seeds its own data into DATABASE_URL (default: a database `ecommerce_load`, created if
missing): migrations, seed_demo (shipping to DE, taxes), 200 products with ample stock and
300 customers with access tokens. Then runs bench/locustfile.py headless (Locust, a dev
dependency) against the stack: --users users, each paced by constant_throughput and staggered,
so iterations arrive evenly at --rate per second for --duration seconds whatever the server's
speed, at most --users at once (an arrival whose user is still busy is missed, and counted).
An iteration is one visitor step, drawn as a shop's traffic is:

    browse a listing page 30%, a product page 35%, a search 10%,
    an anonymous cart (create, add 1-2 lines, read it) 17%,
    a signed-in checkout (cart, 1-3 lines, address, shipping method, checkout) 5%,
    a one-call order (POST /api/orders) 3%.

Every order pays with the sandbox's tok_success; the run ends by waiting up to --settle
seconds for the worker to charge them all. It prints Locust's latencies per endpoint (from its
CSV statistics), the web's and the worker's CPU per request, database commits and
connections, and checks the thresholds (error rate, p95, p99, missed arrivals, orders paid):
exit status 1 when one fails.

Bounded on purpose: at most 200 iterations/s for 300 s with 200 users, against 127.0.0.1
only, checked before anything starts. Rate limits are off (RATE_LIMIT_ENABLED=0): every
request comes from one address, which the shop would rightly limit as one client. Needs the
local PostgreSQL and Redis (REDIS_URL, default db 11).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
MAX_RATE = 200.0
MAX_DURATION_SECONDS = 300
MAX_USERS = 200
# Locust runs this much longer than the arrivals (the locustfile starts none after
# --duration), then lets running iterations finish for up to STOP_TIMEOUT_SECONDS.
RUN_TIME_GRACE_SECONDS = 2
STOP_TIMEOUT_SECONDS = 30
PRODUCTS = 200
CUSTOMERS = 300
# Product names are made of these; the locustfile searches for them.
WORDS = ("organic", "classic", "linen", "woollen", "enamel", "ceramic", "travel", "garden")
THINGS = ("shirt", "mug", "lamp", "scarf", "bottle", "notebook", "blanket", "candle")

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
class Traffic:
    """What Locust measured (its CSV statistics) and what the locustfile counted."""

    endpoints: list[dict[str, str]]  # rows of <prefix>_stats.csv, one per method and name
    total: dict[str, str]  # its Aggregated row
    failures: list[str]  # from <prefix>_failures.csv
    iterations: dict[str, int]
    failed_iterations: int
    orders: list[tuple[str, str]]  # (order id, access token)


def run_locust(
    base_url: str,
    *,
    rate: float,
    duration: int,
    users: int,
    access_tokens: list[str],
    seed: int,
    workdir: Path,
    tag: str,
    database: Database | None = None,
) -> Traffic:
    """bench/locustfile.py headless against base_url: `users` users sharing `rate` iterations/s
    for `duration` s. Samples the database's connections meanwhile."""
    results = workdir / f"{tag}-results.json"
    scenario = workdir / f"{tag}-scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "rate": rate,
                "duration": duration,
                "seed": seed,
                "skus": [f"LOAD-{n}" for n in range(1, PRODUCTS + 1)],
                "tokens": access_tokens,
                "words": WORDS,
                "things": THINGS,
                "results": str(results),
            }
        )
    )
    prefix = workdir / tag
    command = [
        PYTHON, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{duration + RUN_TIME_GRACE_SECONDS}s",
        "--stop-timeout", str(STOP_TIMEOUT_SECONDS),
        "--host", base_url, "--csv", str(prefix), "--only-summary",
    ]  # fmt: skip
    with (workdir / f"{tag}.log").open("w+") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "LOAD_SCENARIO": str(scenario)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + duration + RUN_TIME_GRACE_SECONDS + STOP_TIMEOUT_SECONDS + 120
        while process.poll() is None and time.monotonic() < deadline:
            if database is not None:
                database.sample_connections()
            time.sleep(1)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Locust exits 1 when a request failed: the thresholds judge that, not its status.
        if process.returncode not in (0, 1) or not results.exists():
            log.seek(0)
            sys.exit(f"load: locust exited with {process.returncode}\n{log.read()[-3000:]}")
    with Path(f"{prefix}_stats.csv").open() as stats:
        rows = list(csv.DictReader(stats))
    with Path(f"{prefix}_failures.csv").open() as failures:
        errors = [
            f"{row['Method']} {row['Name']}: {row['Occurrences']} x {row['Error'][:200]}"
            for row in csv.DictReader(failures)
        ]
    tally = json.loads(results.read_text())
    return Traffic(
        endpoints=[row for row in rows if row["Name"] != "Aggregated"],
        total=next(row for row in rows if row["Name"] == "Aggregated"),
        failures=errors,
        iterations=dict(tally["iterations"]),
        failed_iterations=int(tally["failed_iterations"]),
        orders=[(order_id, token) for order_id, token in tally["orders"]],
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=12.0, help="iterations per second")
    parser.add_argument("--duration", type=int, default=45, help="seconds of arrivals")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--users", type=int, default=64, help="Locust users: iterations at once")
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait for payments")
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument("--p95-ms", type=float, default=500)
    parser.add_argument("--p99-ms", type=float, default=1000)
    parser.add_argument("--max-missed-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the mix")
    args = parser.parse_args()
    if (
        not 0 < args.rate <= MAX_RATE
        or not 0 < args.duration <= MAX_DURATION_SECONDS
        or not 0 < args.users <= MAX_USERS
    ):
        sys.exit(
            f"load: --rate in (0, {MAX_RATE:.0f}], --duration in (0, {MAX_DURATION_SECONDS}],"
            f" --users in [1, {MAX_USERS}]"
        )
    backing_urls()
    offered = offered_iterations(args.rate, args.duration)
    users = min(args.users, offered)

    metrics_dir = tempfile.mkdtemp(prefix="load-metrics-")
    workdir = Path(tempfile.mkdtemp(prefix="load-locust-"))
    env = stack_env(free_port(), free_port(), args.web_workers, metrics_dir)
    print(f"load: seeding {env['DATABASE_URL']}", flush=True)
    access_tokens = seed(env)
    stack = Stack(env, metrics_dir)
    try:
        stack.wait_ready()
        # Warm what a running shop has warm (every gunicorn worker's imports and URL
        # resolver, the catalog cache): two seconds of the mix, not measured.
        run_locust(
            stack.base_url,
            rate=10,
            duration=2,
            users=8,
            access_tokens=access_tokens[:10],
            seed=args.seed + 1,
            workdir=workdir,
            tag="warmup",
        )
        database = Database(env["DATABASE_URL"])
        cpu_before = {name: stack.cpu_seconds(name) for name in ("web", "worker")}
        commits_before = database.commits()
        print(
            f"load: locust, {args.rate:g} iterations/s for {args.duration} s by {users} users"
            f" against {stack.base_url} ({args.web_workers} gunicorn workers, 1 Celery worker"
            " of 2 processes)",
            flush=True,
        )
        traffic = run_locust(
            stack.base_url,
            rate=args.rate,
            duration=args.duration,
            users=users,
            access_tokens=access_tokens,
            seed=args.seed,
            workdir=workdir,
            tag="load",
            database=database,
        )
        web_cpu = stack.cpu_seconds("web") - cpu_before["web"]
        commits = database.commits() - commits_before
        settled = settle(stack.base_url, traffic.orders, args.settle)
        worker_cpu = stack.cpu_seconds("worker") - cpu_before["worker"]
    finally:
        stack.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, users, offered, traffic, settled, web_cpu, worker_cpu, commits, database)


def offered_iterations(rate: float, duration: int) -> int:
    """Arrivals scheduled in the run: one every 1 / rate s, from 0 to before `duration`."""
    return max(1, math.ceil(round(rate * duration, 6)))


def report(
    args: argparse.Namespace,
    users: int,
    offered: int,
    traffic: Traffic,
    settled: dict[str, Any],
    web_cpu: float,
    worker_cpu: float,
    commits: int,
    database: Database,
) -> None:
    total = traffic.total
    requests = int(total["Request Count"])
    errors = int(total["Failure Count"])
    started = sum(traffic.iterations.values())
    missed = max(0, offered - started)
    print(f"\n{'endpoint':32} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for row in sorted(traffic.endpoints, key=lambda row: (row["Name"], row["Type"])):
        label = f"{row['Type']} {row['Name']}"
        print(
            f"{label:32} {row['Request Count']:>6} {row['Failure Count']:>6} {row['50%']:>8}"
            f" {row['95%']:>8} {row['99%']:>8}"
        )
    p50, p95, p99 = (float(total[column]) for column in ("50%", "95%", "99%"))
    print(f"{'all':32} {requests:6} {errors:6} {p50:8.0f} {p95:8.0f} {p99:8.0f}")
    orders = len(traffic.orders)
    paid = settled["statuses"].get("paid", 0)
    lags = settled["lags"]
    figures = {
        "driver": "locust",
        "rate": args.rate,
        "duration": args.duration,
        "users": users,
        "web_workers": args.web_workers,
        "offered": offered,
        "iterations": started,
        "iterations_per_second": round(started / args.duration, 2),
        "requests_per_second": round(requests / args.duration, 2),
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else 1.0,
        "failed_iterations": traffic.failed_iterations,
        "missed": missed,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "mix": traffic.iterations,
        "orders": orders,
        "orders_by_status": settled["statuses"],
        "payment_lag_p50_s": round(percentile(lags, 0.5), 2),
        "payment_lag_p95_s": round(percentile(lags, 0.95), 2),
        "web_cpu_ms_per_request": round(1000 * web_cpu / requests, 2) if requests else 0,
        "web_cpu_cores_busy": round(web_cpu / args.duration, 2),
        "worker_cpu_ms_per_order": round(1000 * worker_cpu / orders, 1) if orders else 0,
        "db_commits_per_request": round(commits / requests, 2) if requests else 0,
        "db_connections_max": database.max_connections,
    }
    print(
        f"\n{figures['iterations_per_second']} iterations/s, {figures['requests_per_second']}"
        f" requests/s over the {args.duration} s of arrivals; missed {missed} of {offered};"
        f" orders {orders}, {settled['statuses']}; payment lag p50"
        f" {figures['payment_lag_p50_s']} s, p95 {figures['payment_lag_p95_s']} s"
    )
    print(
        f"web CPU {figures['web_cpu_ms_per_request']} ms per request"
        f" ({figures['web_cpu_cores_busy']} cores busy); worker CPU"
        f" {figures['worker_cpu_ms_per_order']} ms per order; database"
        f" {figures['db_commits_per_request']} commits per request, at most"
        f" {database.max_connections} connections"
    )
    for failure in traffic.failures[:10]:
        print(f"  error: {failure}")
    checks = [
        ("error rate", figures["error_rate"], args.max_error_rate, "{:.2%}"),
        ("p95 ms", p95, args.p95_ms, "{:.0f}"),
        ("p99 ms", p99, args.p99_ms, "{:.0f}"),
        ("missed arrivals", missed / offered, args.max_missed_rate, "{:.2%}"),
        ("orders not paid", orders - paid, 0, "{:.0f}"),
    ]
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
