"""The harness of the fault tests: the whole shop as real processes, a steady order load,
faults injected by signal, and the settled outcome read back from the database and the
provider.

One `FaultDatabase` (a throwaway PostgreSQL cluster, migrated by `manage.py migrate` in a
subprocess) is the template of every `Stack`: a copy of it, a payment sandbox, a throwaway
redis-server (cache on db 0, broker on db 1), gunicorn, one Celery worker per worker
process of the Procfile and beat with short intervals. The scenarios on one broker share
a stack, one after the other (tests/integration/test_faults.py). Every process leads its
own process group and is stopped through its PID; nothing is found by name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg2

from tests.integration.processes import ROOT, CeleryWorker, SandboxServer, _stop
from tests.servers import GunicornServer, PostgresServer, RedisServer, free_port

# Inherited from a shell or pytest, these would point a process at someone else's state.
NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "CELERY_METRICS_PORT", "PYTEST_CURRENT_TEST")
# Short intervals so that every recovery path runs within a scenario's settle time. The
# payment window is long enough that no order may expire during a fault: every accepted
# order must end paid (or declined by its card), never expired.
TIMINGS = {
    "ORDER_PAYMENT_TIMEOUT_SECONDS": "120",
    "ORDER_EXPIRY_INTERVAL_SECONDS": "5",
    "OUTBOX_RELAY_INTERVAL_SECONDS": "1",
    "OUTBOX_RELAY_MIN_AGE_SECONDS": "2",
    # Longer than the worst queue wait under this load on a busy 2-core machine: a lease
    # that runs out while its message merely waits in the queue sends a duplicate.
    "OUTBOX_LEASE_SECONDS": "30",
    "OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS": "10",
    "TASK_TRANSIENT_RETRY_BASE_SECONDS": "1",
    "TASK_TRANSIENT_RETRY_CAP_SECONDS": "5",
    "PAYMENT_RECONCILE_INTERVAL_SECONDS": "2",
    "PAYMENT_RECONCILE_AFTER_SECONDS": "5",
    "PAYMENT_UNATTEMPTED_AFTER_SECONDS": "5",
    "PAYMENT_LOCK_TTL_SECONDS": "10",
    "PAYMENT_RETRY_BASE_SECONDS": "0.5",
    "PAYMENT_RETRY_CAP_SECONDS": "3",
    "PAYMENT_RETRY_MAX_ATTEMPTS": "30",
    "PAYMENT_MAX_ATTEMPTS_PER_PAYMENT": "40",
    "PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS": "1",
    "PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "5",
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS": "1",
    "NOTIFICATION_SWEEP_INTERVAL_SECONDS": "2",
    "NOTIFICATION_SWEEP_GRACE_SECONDS": "10",
    "NOTIFICATION_REQUEUE_AFTER_SECONDS": "30",
    "NOTIFICATION_LOCK_TTL_SECONDS": "15",
    "NOTIFICATION_RETRY_BASE_SECONDS": "0.5",
    "NOTIFICATION_RETRY_CAP_SECONDS": "3",
    "NOTIFICATION_EMAIL_MAX_ATTEMPTS": "30",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOK_RETRY_CAP_SECONDS": "3",
    "WEBHOOK_READ_TIMEOUT_SECONDS": "40",
    "WEBHOOK_DISABLE_AFTER_FAILURES": "1000",
    "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": "3600",
    # No request may be refused by a limit: each scope gets a huge one.
    "RATE_LIMIT_AUTH": "100000/m",
    "RATE_LIMIT_ORDERS": "100000/m",
    "RATE_LIMIT_WRITES": "100000/m",
    "RATE_LIMIT_READS": "100000/m",
    "EMAIL_URL": "memorymail://",
    "INVARIANTS_GRACE_SECONDS": "0",
}
PASSWORD = "Zq8-lantern-vivid-4419"
SKUS = ("fault-a", "fault-b", "fault-c")
DECLINE_TOKEN = "tok_card_declined"
FINAL = ("paid", "payment_failed")
# Thousands of provider look-ups would otherwise each log a line in the test's output.
logging.getLogger("httpx").setLevel(logging.WARNING)


def procfile_workers() -> list[tuple[str, tuple[str, ...]]]:
    """The Procfile's Celery worker processes and the queues each consumes."""
    workers = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if "celery" in command and " worker" in command:
            match = re.search(r"-Q\s+(\S+)", command)
            queues = tuple(match[1].split(",")) if match else ("celery",)
            workers.append((name.strip(), queues))
    return workers


# A worker for any queues: CeleryWorker takes them.
QueueWorker = CeleryWorker


class Beat:
    """`celery -A ecommerce beat` with its schedule file in a scratch directory."""

    def __init__(self, *, env: dict[str, str], directory: Path) -> None:
        command = [sys.executable, "-m", "celery", "-A", "ecommerce", "beat", "-l", "INFO"]
        command += ["--schedule", str(directory / "celerybeat-schedule")]
        with (directory / "beat.log").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        _stop(self.process, grace_seconds=5)


# The suite's redis-server restarts empty on its port and freezes; the name says what the
# fault tests rely on.
SamePortRedis = RedisServer


class FaultDatabase:
    """A database of the project on a throwaway PostgreSQL cluster, read back with psycopg2.

    `FaultDatabase.migrated` runs `manage.py migrate` once, in a subprocess, on a template;
    `copy()` makes a fresh database from it in a second, so each scenario starts empty and
    what one scenario left behind never settles (or fails to) in the next.
    """

    def __init__(self, server: PostgresServer, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url(name)

    @classmethod
    def migrated(cls, server: PostgresServer, *, env: dict[str, str]) -> FaultDatabase:
        database = cls(server, "shop_template")
        server.create_database(database.name)
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env={**env, "DATABASE_URL": database.url},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return database

    def copy(self, name: str) -> FaultDatabase:
        connection = psycopg2.connect(self.server.url(), connect_timeout=5)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        finally:
            connection.close()
        return FaultDatabase(self.server, name)

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(self.url, connect_timeout=5)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()


def base_env(*, sandbox_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DEBUG="0",
        LOG_JSON="1",
        LOG_LEVEL="INFO",
        PAYMENT_PROVIDER_URL=sandbox_url,
        ALLOW_IN_PROCESS_PAYMENT_SANDBOX="0",
        **TIMINGS,
    )
    return env


class Stack:
    """One run of the shop: Redis (the cache; the broker too unless `broker_url` names
    another), gunicorn (2 workers), the Procfile's workers, beat.

    Its processes start together (each waits for the others only at the end), its
    customers are registered meanwhile (`tokens()`), and `close()` stops them all at once.
    """

    def __init__(
        self,
        *,
        database: FaultDatabase,
        sandbox: SandboxServer,
        directory: Path,
        extra_env: dict[str, str] | None = None,
        broker_url: str | None = None,
        customers: int = 0,
        webhooks: dict[int, str] | None = None,
    ) -> None:
        self.started = time.monotonic()
        self.database = database
        self.sandbox = sandbox
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.redis = SamePortRedis()
        prefix = f"fault-{uuid.uuid4().hex[:8]}"
        self.broker_url = broker_url or f"redis://127.0.0.1:{self.redis.port}/1"
        self.env = base_env(sandbox_url=sandbox.url)
        self.env.update(
            DATABASE_URL=database.url,
            REDIS_URL=f"redis://127.0.0.1:{self.redis.port}/0",
            CACHE_KEY_PREFIX=prefix,
            TRACES_KEY_PREFIX=prefix,
            CELERY_BROKER_URL=self.broker_url,
            METRICS_DIR=str(directory / "metrics"),
            **(extra_env or {}),
        )
        self.workers: dict[str, QueueWorker] = {}
        # Set while a scenario runs on the stack, cleared once it settled and passed.
        self.tainted = False
        self._restarts = 0
        self.web: GunicornServer | None = None
        self.beat: Beat | None = None
        self._tokens: list[str] = []
        self._customers_error: BaseException | None = None
        self._customers = threading.Thread(
            target=self._create_customers, args=(customers, webhooks), daemon=True
        )
        self._customers.start()
        try:
            # gunicorn first, alone: its start-up has a deadline of its own.
            self.web = GunicornServer(
                workers=2,
                env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics" / "web")},
                log_path=directory / "web.log",
                # A busy 2-core machine (other suites, the other scenarios' teardown).
                start_timeout_seconds=60,
            )
            for name, queues in procfile_workers():
                self.start_worker(name, queues, wait=False)
            self.beat = Beat(env=self.env, directory=directory)
            for worker in self.workers.values():
                worker.wait_until_ready()
        except BaseException:
            self.close()
            raise
        self.url = self.web.url

    def _create_customers(self, count: int, webhooks: dict[int, str] | None) -> None:
        try:
            if count:
                self._tokens = create_customers(self, count=count, webhooks=webhooks)
        except BaseException as exc:  # raised again by tokens()
            self._customers_error = exc

    def tokens(self) -> list[str]:
        """The access tokens of the customers registered while the stack started."""
        self._customers.join(timeout=180)
        if self._customers_error is not None:
            raise self._customers_error
        return self._tokens

    def start_worker(self, name: str, queues: tuple[str, ...], *, wait: bool = True) -> QueueWorker:
        self._restarts += 1
        worker = QueueWorker(
            env={
                **self.env,
                "PROMETHEUS_MULTIPROC_DIR": str(self.directory / "metrics" / name),
            },
            nodename=f"{name}-{self._restarts}-{uuid.uuid4().hex[:4]}@127.0.0.1",
            log_path=self.directory / f"{name}-{self._restarts}.log",
            queues=queues,
            wait=wait,
        )
        self.workers[name] = worker
        return worker

    @property
    def main_worker(self) -> tuple[str, QueueWorker]:
        for name, worker in self.workers.items():
            if "payments" in worker.queues:
                return name, worker
        raise AssertionError("no worker consumes the payments queue")

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        """Stop every process at once (each is still stopped through its own PID)."""
        self._customers.join(timeout=180)
        stops: list[Any] = [worker.stop for worker in self.workers.values()]
        if self.beat is not None:
            stops.append(self.beat.stop)
        if self.web is not None:
            stops.append(self.web.stop)
        threads = [threading.Thread(target=stop, daemon=True) for stop in stops]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.redis.kill()


SETUP = """
import json, sys
from decimal import Decimal
from apps.catalog import services as catalog
from apps.catalog.models import ProductVariant
from apps.notifications.models import WebhookEndpoint
from apps.users import services as users
from rest_framework_simplejwt.tokens import RefreshToken
spec = json.loads(sys.argv[-1])
for sku in spec["skus"]:
    if not ProductVariant.objects.filter(sku__iexact=sku).exists():
        catalog.create_product(name=sku, variants=[
            catalog.VariantSpec(sku=sku, price=Decimal("9.50"), initial_stock=1000000)])
tokens = []
for email in spec["emails"]:
    user = users.register_user(email=email, name="Fault Buyer", password=spec["password"])
    tokens.append(str(RefreshToken.for_user(user).access_token))
    if email in spec["webhooks"]:
        WebhookEndpoint.objects.create(
            owner=user, url=spec["webhooks"][email], secret="whsec-fault-test",
            events=spec["events"],
        )
print(json.dumps(tokens))
"""


def create_customers(
    stack: Stack, *, count: int, webhooks: dict[int, str] | None = None
) -> list[str]:
    """Register `count` customers (their welcome emails are events too) and return their
    access tokens; customer i gets a webhook endpoint to `webhooks[i]` when given."""
    run = uuid.uuid4().hex[:6]
    emails = [f"fault-{run}-{i}@example.com" for i in range(count)]
    spec = {
        "skus": SKUS,
        "emails": emails,
        "password": PASSWORD,
        "webhooks": {emails[i]: url for i, url in (webhooks or {}).items()},
        "events": ["order_placed", "order_paid", "payment_failed"],
    }
    script = ROOT / "var" / f"fault-setup-{run}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(SETUP)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django, os, runpy, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
                " 'ecommerce.settings'); django.setup(); runpy.run_path(sys.argv[1])",
                str(script),
                json.dumps(spec),
            ],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        script.unlink(missing_ok=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


# --- The load ---------------------------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP request: when it left (monotonic), how long it took, what it got."""

    started: float
    seconds: float
    status: int | None  # None: no answer (timeout, refused)
    error: str = ""


@dataclass
class Placement:
    """One order a customer wanted, under one Idempotency-Key, retried until answered."""

    key: str
    customer: int
    token: str
    attempts: list[Attempt] = field(default_factory=list)
    order_id: str | None = None  # public id, from the 201

    @property
    def final_status(self) -> int | None:
        return self.attempts[-1].status if self.attempts else None


class LoadGenerator:
    """Threads placing orders at a steady total rate through the HTTP API.

    Each order carries an Idempotency-Key; an answer that says nothing definite (a 5xx, a
    transport error) is retried with the same key, as a careful client does, for up to
    `retry_for_seconds`. Every 10th order pays with a card that is declined.
    """

    def __init__(
        self,
        *,
        url: str,
        tokens: list[str],
        rate_per_second: float,
        threads: int = 6,
        timeout_seconds: float = 40.0,
        retry_for_seconds: float = 90.0,
        customers: list[int] | None = None,
    ) -> None:
        self.url = url
        self.tokens = tokens
        self.customers = customers if customers is not None else list(range(len(tokens)))
        self.interval = threads / rate_per_second
        self.threads_count = threads
        self.timeout = timeout_seconds
        self.retry_for = retry_for_seconds
        self.placements: list[Placement] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counter = 0
        # When the fault began (monotonic), to tell orders placed before it from the rest.
        self.fault_started = float("inf")

    def start(self) -> None:
        for index in range(self.threads_count):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, wait_seconds: float = 120.0) -> None:
        """Stop placing new orders; wait for those in flight to get a definite answer."""
        self._stopping.set()
        deadline = time.monotonic() + wait_seconds
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def _next(self) -> Placement:
        with self._lock:
            self._counter += 1
            number = self._counter
            customer = self.customers[number % len(self.customers)]
            token = DECLINE_TOKEN if number % 10 == 0 else "tok_success"
            placement = Placement(key=f"fault-{uuid.uuid4()}", customer=customer, token=token)
            self.placements.append(placement)
            return placement

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout, trust_env=False) as client:
            next_at = time.monotonic() + index * self.interval / self.threads_count
            while not self._stopping.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at = max(next_at + self.interval, time.monotonic())
                self._place(client, self._next())

    def _place(self, client: httpx.Client, placement: Placement) -> None:
        body = {
            "items": [{"id": SKUS[hash(placement.key) % len(SKUS)], "quantity": 1}],
            "payment_token": placement.token,
        }
        headers = {
            "Authorization": f"Bearer {self.tokens[placement.customer]}",
            "Idempotency-Key": placement.key,
        }
        give_up = time.monotonic() + self.retry_for
        while True:
            started = time.monotonic()
            try:
                response = client.post("/api/orders", json=body, headers=headers)
                attempt = Attempt(started, time.monotonic() - started, response.status_code)
                if response.status_code in (200, 201):
                    placement.order_id = response.json()["id"]
            except httpx.HTTPError as exc:
                attempt = Attempt(started, time.monotonic() - started, None, type(exc).__name__)
                response = None
            placement.attempts.append(attempt)
            definite = attempt.status is not None and attempt.status < 500
            if definite or time.monotonic() > give_up:
                return
            time.sleep(0.5)

    # Figures

    def attempts(self) -> list[Attempt]:
        return [a for p in self.placements for a in p.attempts]

    def accepted(self) -> list[Placement]:
        return [p for p in self.placements if p.final_status in (200, 201)]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- A slow webhook receiver ----------------------------------------------------------------


class Receiver:
    """A customer's webhook endpoint on 127.0.0.1 that answers 200 after `delay_seconds`."""

    def __init__(self) -> None:
        self.delay_seconds = 0.0
        self.received: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                time.sleep(receiver.delay_seconds)
                receiver.received.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()


# --- Reading the outcome back -------------------------------------------------------------


@dataclass
class Outcome:
    """What became of a scenario's accepted orders, and what is still wrong."""

    problems: list[str]
    # Idempotency key -> seconds from the order's creation to its `paid` event.
    paid_after: dict[str, float]

    @property
    def paid_seconds(self) -> list[float]:
        return list(self.paid_after.values())


def _done_column(database: FaultDatabase) -> str:
    columns = {
        name
        for (name,) in database.rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'outbox_outboxmessage'"
        )
    }
    return "completed_at" if "completed_at" in columns else "dispatched_at"


def stopped_processes(stack: Stack) -> list[str]:
    """Workers and beat that exited during the scenario: nothing restarts them here, so
    every later symptom (orders left unpaid, rows left in the outbox) follows from this."""
    stopped = [
        f"worker {name} exited with {worker.process.returncode}, last logged: "
        + " | ".join(str(line.get("event"))[:200] for line in worker.log()[-3:])
        for name, worker in stack.workers.items()
        if not worker.alive
    ]
    if stack.beat is not None and stack.beat.process.poll() is not None:
        stopped.append(f"beat exited with {stack.beat.process.returncode}")
    return stopped


def outcome_of(
    stack: Stack, load: LoadGenerator, *, since: datetime, ask_provider: bool = True
) -> Outcome:
    """Every accepted order final (paid, or declined by its card), charged once at the
    provider, with its notifications; nothing left waiting in the outbox or to be sent."""
    database = stack.database
    accepted = load.accepted()
    problems: list[str] = stopped_processes(stack)
    keys = [p.key for p in load.placements]
    rows = database.rows(
        "SELECT o.idempotency_key, o.public_id::text, o.status, o.id, p.status"
        " FROM orders_order o JOIN payments_payment p ON p.order_id = o.id"
        " WHERE o.idempotency_key = ANY(%s)",
        (keys,),
    )
    by_key = {row[0]: row for row in rows}
    unanswered = [p for p in load.placements if p.final_status not in (200, 201)]
    for placement in unanswered:
        if placement.key in by_key:
            problems.append(f"order {placement.key} exists but the client never got its 201")
    for placement in accepted:
        row = by_key.get(placement.key)
        if row is None:
            problems.append(f"201 for {placement.key} but no order")
            continue
        expected = "payment_failed" if placement.token == DECLINE_TOKEN else "paid"
        if row[1] != placement.order_id:
            problems.append(f"{placement.key}: 201 named {placement.order_id}, order is {row[1]}")
        if row[2] != expected:
            problems.append(f"order {row[3]} ({placement.key}) is {row[2]}, expected {expected}")
    order_ids = [row[3] for row in rows]
    events = database.rows(
        "SELECT subject, event FROM notifications_notification WHERE channel = 'email'"
        " AND subject = ANY(%s)",
        ([f"order:{pk}" for pk in order_ids],),
    )
    notified = set(events)
    for _key, _public, status, pk, _payment in rows:
        wanted = ["order_placed"] + (
            ["order_paid"] if status == "paid" else ["payment_failed"] if status in FINAL else []
        )
        missing = [event for event in wanted if (f"order:{pk}", event) not in notified]
        if missing:
            problems.append(f"order {pk} ({status}) has no {', '.join(missing)} email")
    waiting = database.rows(
        "SELECT count(*) FROM notifications_notification WHERE status IN ('pending', 'sending')"
    )[0][0]
    if waiting:
        problems.append(f"{waiting} notification(s) still pending or sending")
        problems += [
            f"  {count} {event} by {channel} {status}, {attempts} attempt(s), due {due}: {error}"
            for event, channel, status, attempts, due, error, count in database.rows(
                "SELECT event, channel, status, attempts, next_attempt_at, left(last_error, 80),"
                " count(*) FROM notifications_notification"
                " WHERE status IN ('pending', 'sending') GROUP BY 1, 2, 3, 4, 5, 6"
                " ORDER BY 7 DESC LIMIT 5"
            )
        ]
    done = _done_column(database)
    stale = database.rows(f"SELECT count(*) FROM outbox_outboxmessage WHERE {done} IS NULL")[0][0]  # noqa: S608
    if stale:
        problems.append(f"{stale} outbox message(s) not done ({done} empty)")
        if done == "completed_at":
            problems += [
                f"  {count} {topic} -> {task}, {attempts} hand-off(s), lease {lease}: {error}"
                for topic, task, attempts, lease, error, count in database.rows(
                    "SELECT topic, task_name, attempts, lease_until > now(), left(last_error, 80),"
                    " count(*) FROM outbox_outboxmessage WHERE completed_at IS NULL"
                    " GROUP BY 1, 2, 3, 4, 5 ORDER BY 6 DESC LIMIT 8"
                )
            ]
    if ask_provider and not problems:
        for _key, public, status, pk, _payment in rows:
            charge = stack.sandbox.charge_for(f"order-{public}")
            want = {"paid": "succeeded", "payment_failed": "declined"}.get(status)
            got = charge["status"] if charge else None
            if want and got != want:
                problems.append(f"order {pk} is {status}, provider charge {got}")
        paid = database.rows(
            "SELECT count(*) FROM payments_payment WHERE status IN ('succeeded', 'refunded')"
        )[0][0]
        charged = stack.sandbox.charges()["succeeded"]
        if charged != paid:
            problems.append(f"the provider holds {charged} succeeded charges, we {paid} payments")
    paid_after = {
        key: float(seconds)
        for key, seconds in database.rows(
            "SELECT o.idempotency_key, extract(epoch FROM e.created_at - o.created_at)"
            " FROM orders_orderevent e JOIN orders_order o ON o.id = e.order_id"
            " WHERE e.to_status = 'paid' AND o.idempotency_key = ANY(%s)",
            (keys,),
        )
    }
    return Outcome(problems=problems, paid_after=paid_after)


DUPLICATE = """
import os, sys
from ecommerce.outbox import registry
from ecommerce.outbox.models import OutboxMessage
charges = OutboxMessage.objects.filter(
    task_name="payments.charge_payment", pk__gt=int(os.environ["DUPLICATE_AFTER_PK"])
)
sys.stdin.readline()  # set up beforehand; go
sent = 0
for message in charges.order_by("pk"):
    for _ in range(2):
        registry._send(message)
        sent += 1
print(sent)
"""


class Duplicator:
    """Publishes every charge message of the scenario so far twice more, as the relay would
    (same task, same payload, same row header): duplicates of charges done, in flight and
    still queued.
    (Charges only: notifications dedupe by key too, but tripling them only slows the run.)

    A `manage.py shell` of the stack, started (Django set up) before the load; `go()`
    makes it publish at once, `wait()` returns how many it sent.
    """

    def __init__(self, stack: Stack) -> None:
        # The scenarios before this one on the same stack are not its business.
        floor = stack.database.rows("SELECT coalesce(max(id), 0) FROM outbox_outboxmessage")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", DUPLICATE],
            cwd=ROOT,
            env={**stack.env, "DUPLICATE_AFTER_PK": str(floor[0][0])},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def wait(self) -> int:
        try:
            out, err = self.process.communicate(timeout=120)
        finally:
            self.close()
        assert self.process.returncode == 0, out[-2000:] + err[-2000:]
        return int(out.strip().splitlines()[-1])

    def close(self) -> None:
        """Kill it (by its PID) if it still runs: a test that failed before `wait()`."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def settle(
    stack: Stack, load: LoadGenerator, *, since: datetime, timeout_seconds: float
) -> tuple[float, Outcome]:
    """Wait until the outcome has no problem; the seconds it took and the last outcome."""
    started = time.monotonic()
    shown = started
    while True:
        outcome = outcome_of(stack, load, since=since, ask_provider=False)
        if not outcome.problems:
            outcome = outcome_of(stack, load, since=since)
        if not outcome.problems or time.monotonic() - started > timeout_seconds:
            return time.monotonic() - started, outcome
        if time.monotonic() - shown > 20:  # what is still settling, for `pytest -s`
            shown = time.monotonic()
            print(f"settling {shown - started:.0f}s:", *outcome.problems[:6], sep="\n  ")
        time.sleep(0.5)


def check_invariants(stack: Stack, *, since: datetime) -> dict[str, Any]:
    """`manage.py check_invariants --json` as an operator runs it; its exit status and report."""
    result = stack.manage(
        "check_invariants", "--json", "--grace-seconds", "0", "--since", since.isoformat()
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = {"ok": False, "raw": result.stdout[-3000:] + result.stderr[-3000:]}
    report["exit_code"] = result.returncode
    return report


def broken_checks(report: dict[str, Any]) -> list[str]:
    if "checks" not in report:
        return [str(report.get("raw"))]
    return [
        f"{c['name']} {c['status']} broken={c['broken']}: {c['examples'][:3]}"
        for c in report["checks"]
        if c["status"] != "ok"
    ]


@dataclass
class Figures:
    """What a scenario measured, printed for the record."""

    scenario: str
    orders: int
    accepted: int
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    settle_seconds: float
    paid_p50_ms: float
    paid_p99_ms: float
    money: Money = field(default_factory=lambda: Money(0, 0, 0, 0))
    wall_seconds: float = 0.0

    def line(self) -> str:
        return (
            f"[fault {self.scenario}] orders={self.orders} accepted={self.accepted} "
            f"charges={self.money.charges} paid={self.money.paid} lost={self.money.lost} "
            f"doubled={self.money.doubled} "
            f"statuses={self.statuses} latency p50={self.p50_ms:.0f}ms p99={self.p99_ms:.0f}ms "
            f"max={self.max_ms:.0f}ms settle={self.settle_seconds:.1f}s "
            f"time-to-paid p50={self.paid_p50_ms:.0f}ms p99={self.paid_p99_ms:.0f}ms "
            f"wall={self.wall_seconds:.0f}s"
        )


@dataclass
class Money:
    """The charges at the provider against the orders: `lost` accepted orders not paid (or
    declined) as their card says, `doubled` charges beyond one per paid payment (over every
    scenario the stack ran). `charges` and `paid` count this scenario's."""

    charges: int
    paid: int
    lost: int
    doubled: int


def totals(stack: Stack) -> tuple[int, int]:
    """Succeeded charges at the provider, and payments paid in the database, so far."""
    paid = stack.database.rows(
        "SELECT count(*) FROM payments_payment WHERE status IN ('succeeded', 'refunded')"
    )[0][0]
    return int(stack.sandbox.charges()["succeeded"]), int(paid)


def money(stack: Stack, load: LoadGenerator, *, before: tuple[int, int] = (0, 0)) -> Money:
    accepted = load.accepted()
    statuses = dict(
        stack.database.rows(
            "SELECT idempotency_key, status FROM orders_order WHERE idempotency_key = ANY(%s)",
            ([p.key for p in accepted],),
        )
    )
    lost = sum(
        1
        for p in accepted
        if statuses.get(p.key) != ("payment_failed" if p.token == DECLINE_TOKEN else "paid")
    )
    charges, paid = totals(stack)
    return Money(
        charges=charges - before[0],
        paid=paid - before[1],
        lost=lost,
        doubled=max(0, charges - paid),
    )


def figures(scenario: str, load: LoadGenerator, outcome: Outcome, settle_seconds: float) -> Figures:
    attempts = load.attempts()
    seconds = [a.seconds for a in attempts]
    statuses: dict[str, int] = {}
    for attempt in attempts:
        name = str(attempt.status) if attempt.status is not None else attempt.error or "none"
        statuses[name] = statuses.get(name, 0) + 1
    return Figures(
        scenario=scenario,
        orders=len(load.placements),
        accepted=len(load.accepted()),
        statuses=statuses,
        p50_ms=percentile(seconds, 0.5) * 1000,
        p99_ms=percentile(seconds, 0.99) * 1000,
        max_ms=max(seconds, default=0.0) * 1000,
        settle_seconds=settle_seconds,
        paid_p50_ms=percentile(outcome.paid_seconds, 0.5) * 1000,
        paid_p99_ms=percentile(outcome.paid_seconds, 0.99) * 1000,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
