"""The shop under a steady order load while its dependencies fail, as real processes.

gunicorn (2 workers), the Procfile's Celery workers, beat with short intervals, the
payment sandbox, a throwaway redis-server (cache and broker) and a throwaway PostgreSQL
cluster (tests/integration/faults.py). The broker faults (killed and restarted empty,
worker SIGKILL mid-charge, every charge message delivered twice more) run on each broker:
Redis, and RabbitMQ (quorum queues, publisher confirms) on a vhost of its own on the
machine's RabbitMQ, or on a throwaway rabbitmq-server node for the restart; they are
skipped only when rabbitmq-server is not installed. Each scenario places orders at a steady rate
through the HTTP API with idempotency keys, injects one fault by signal, stops the load,
and then, within a bounded settle time and without any manual command, requires:
every order answered 201 is paid (or declined by its card), charged exactly once at the
provider and notified; nothing waits in the outbox; `manage.py check_invariants` passes;
no request took longer than a few seconds. The figures are printed (run with -s).

The scenarios on one broker run in turn on one stack (`SharedStacks`): each checks its
own orders, and ends only once they settled, so the next starts on a quiet shop that has
been through a fault already. Starting a stack takes longer than most scenarios.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.faults import (
    Duplicator,
    FaultDatabase,
    Figures,
    LoadGenerator,
    Stack,
    base_env,
    broken_checks,
    check_invariants,
    create_customers,
    figures,
    median,
    money,
    now_utc,
    receiver,
    settle,
    stopped_processes,
    totals,
)
from tests.integration.helpers import task_outcomes
from tests.integration.processes import (
    RabbitServer,
    RabbitVhost,
    SandboxServer,
    rabbitmq_missing,
    shared_rabbitmq_missing,
)
from tests.servers import postgres_server

pytestmark = [pytest.mark.slow]

# Enough orders that some are in flight at every step of every fault (about 30 per
# scenario), few enough that the Procfile's one worker drains them quickly on a busy
# 2-core machine: at 8 orders/s the queue wait there outgrew the test's outbox lease and
# the relay's duplicates snowballed.
RATE_PER_SECOND = 5.0
CUSTOMERS = 6
WARM_SECONDS = 3.0
AFTER_SECONDS = 3.0
SETTLE_SECONDS = 150.0
# What any client may wait for an answer, fault or not (gunicorn's timeout is 30 s).
MAX_REQUEST_SECONDS = 5.0
FREEZE_SECONDS = 20.0
DATABASE_DOWN_SECONDS = 10.0
CHARGE_LATENCY_MS = 1500
SLOW_RECEIVER_SECONDS = 30.0
SLOW_PHASE_SECONDS = 15.0
# Time to paid is compared across the receiver's phases, so the worker must keep up with
# the load in both: at 4 orders/s, beside the rest of the suite on 2 cores, its queue grew
# through both phases and the later orders waited longer for that alone.
RECEIVER_RATE_PER_SECOND = 2.0
RECEIVER_WARM_SECONDS = 10.0
# Others' orders may be paid this much later while the receiver is slow, beyond twice the
# normal time: scheduling noise on a busy machine. A payments worker held by the receiver
# would be held SLOW_RECEIVER_SECONDS per delivery (the read timeout is longer), and with
# one of CUSTOMERS customers' two webhooks per order both processes would be held at once.
RECEIVER_NOISE_SECONDS = 2.0
REPORT: list[str] = []
BROKERS = ("redis", "rabbitmq")


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def throwaway_rabbit() -> Iterator[RabbitServer | None]:
    """A rabbitmq-server node of this module's own, booting (it takes ten seconds or more)
    while the template database migrates; None when rabbitmq-server is not installed."""
    if rabbitmq_missing():
        yield None
        return
    server = RabbitServer(wait=False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def database(postgres: Any, throwaway_rabbit: RabbitServer | None) -> FaultDatabase:
    env = base_env(sandbox_url="http://127.0.0.1:9")  # migrate calls no provider
    env.update(ALLOW_LOCAL_STATE="1", REDIS_URL="", CELERY_BROKER_URL="")
    return FaultDatabase.migrated(postgres, env=env)


def need_rabbitmq(*, shared: bool) -> None:
    """Skip when rabbitmq-server is not installed; a broker that is down is a failure."""
    missing = rabbitmq_missing()
    if missing:
        pytest.skip(missing)
    if shared:
        down = shared_rabbitmq_missing()
        assert down is None, down


class SharedStacks:
    """One stack per broker, shared by the scenarios that run on it, in turn: "redis",
    "rabbitmq" (a vhost of its own on the machine's RabbitMQ) or "rabbitmq-throwaway"
    (this module's own node, to restart). Each has its own database copy and payment
    sandbox, so the provider's totals and the database's always cover the same orders.

    A scenario starts only on a stack whose previous scenario settled: every order final,
    nothing left in the outbox or to send (its checks). A scenario that failed leaves its
    stack tainted, and the next one on that broker gets a new stack, so one failure is
    reported once, not again by every scenario after it.
    """

    def __init__(
        self,
        database: FaultDatabase,
        directory: Path,
        throwaway_rabbit: RabbitServer | None,
    ) -> None:
        self.database = database
        self.directory = directory
        self.throwaway_rabbit = throwaway_rabbit
        self.stacks: dict[str, Stack] = {}
        self.retired: list[Stack] = []
        self.vhosts: list[RabbitVhost] = []

    def get(self, broker: str = "redis") -> Stack:
        stack = self.stacks.get(broker)
        if stack is not None and (stack.tainted or stopped_processes(stack)):
            self.retired.append(self.stacks.pop(broker))
            stack = None
        if stack is None:
            stack = self.stacks[broker] = self._start(broker)
        return stack

    def _start(self, broker: str) -> Stack:
        broker_url = None
        if broker == "rabbitmq":
            need_rabbitmq(shared=True)
            vhost = RabbitVhost(f"faults-{os.getpid()}-{len(self.vhosts)}-{time.time_ns() % 10**6}")
            self.vhosts.append(vhost)
            broker_url = vhost.url
        elif broker == "rabbitmq-throwaway":
            need_rabbitmq(shared=False)
            assert self.throwaway_rabbit is not None
            self.throwaway_rabbit.wait_until_ready()
            broker_url = self.throwaway_rabbit.url
        else:
            assert broker == "redis", broker
        name = f"{broker}-{len(self.retired) + len(self.stacks)}"
        directory = self.directory / name
        directory.mkdir()
        sandbox = SandboxServer(log_path=directory / "sandbox.log")
        try:
            return Stack(
                database=self.database.copy(f"shop_{name.replace('-', '_')}"),
                sandbox=sandbox,
                directory=directory,
                broker_url=broker_url,
                customers=CUSTOMERS,
            )
        except BaseException:
            sandbox.close()
            raise

    def close(self) -> None:
        for stack in [*self.stacks.values(), *self.retired]:
            stack.close()
            stack.sandbox.close()
        for vhost in self.vhosts:
            vhost.close()


@pytest.fixture(scope="module")
def stacks(
    database: FaultDatabase, fault_dir: Path, throwaway_rabbit: RabbitServer | None
) -> Iterator[SharedStacks]:
    shared = SharedStacks(database, fault_dir, throwaway_rabbit)
    yield shared
    shared.close()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print("\n" + "\n".join(REPORT))


def run_load(
    stack: Stack,
    name: str,
    fault: Callable[[], None],
    *,
    tokens: list[str] | None = None,
    rate: float = RATE_PER_SECOND,
    warm_seconds: float = WARM_SECONDS,
    after_load: Callable[[], None] | None = None,
) -> tuple[LoadGenerator, Figures, Any]:
    """Load, fault, more load; then settle and check. Returns the load, its figures and
    the settled outcome. `after_load` runs once the load has stopped (to undo a fault)."""
    since = now_utc()
    started = time.monotonic()
    tokens = tokens or stack.tokens()
    load = LoadGenerator(url=stack.url, tokens=tokens, rate_per_second=rate)
    before = totals(stack)
    # Whatever goes wrong from here on, the next scenario gets a stack of its own.
    stack.tainted = True
    load.start()
    time.sleep(warm_seconds)
    load.fault_started = time.monotonic()
    fault()
    time.sleep(AFTER_SECONDS)
    load.stop()
    if after_load is not None:
        after_load()
    settle_seconds, outcome = settle(stack, load, since=since, timeout_seconds=SETTLE_SECONDS)
    measured = figures(name, load, outcome, settle_seconds)
    report = check_invariants(stack, since=since)
    measured.money = money(stack, load, before=before)
    measured.wall_seconds = time.monotonic() - started
    REPORT.append(measured.line())
    print(measured.line())
    assert not outcome.problems, f"{measured.line()}\n" + "\n".join(outcome.problems[:30])
    assert report["exit_code"] == 0, "\n".join(broken_checks(report))
    assert measured.max_ms <= MAX_REQUEST_SECONDS * 1000, measured.line()
    assert (measured.money.lost, measured.money.doubled) == (0, 0), measured.line()
    stack.tainted = False
    return load, measured, outcome


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", BROKERS)
def test_broker_killed_and_restarted_empty(
    stacks: SharedStacks, throwaway_rabbit: RabbitServer | None, broker: str
) -> None:
    stack = stacks.get("redis" if broker == "redis" else "rabbitmq-throwaway")

    def restart() -> None:
        if broker == "redis":
            stack.redis.restart_empty()
        else:
            # The node boots for ten seconds or more; orders keep coming AFTER_SECONDS of it.
            assert throwaway_rabbit is not None
            throwaway_rabbit.restart_empty(wait=False)

    _load, measured, _ = run_load(stack, f"a {broker} SIGKILL + empty restart", restart)

    assert measured.accepted >= RATE_PER_SECOND * (WARM_SECONDS + AFTER_SECONDS) * 0.5


@pytest.mark.timeout(330)
def test_redis_frozen_for_twenty_seconds(stacks: SharedStacks) -> None:
    stack = stacks.get("redis")

    def fault() -> None:
        stack.redis.freeze()
        try:
            time.sleep(FREEZE_SECONDS)
        finally:
            stack.redis.thaw()

    _load, measured, _ = run_load(stack, "b redis SIGSTOP 20s", fault)

    # Orders kept coming while Redis was frozen: the shop did not stop selling.
    assert measured.accepted >= RATE_PER_SECOND * (WARM_SECONDS + AFTER_SECONDS) * 0.5


@pytest.mark.timeout(320)
def test_postgres_stopped_for_ten_seconds(stacks: SharedStacks, postgres: Any) -> None:
    stack = stacks.get("redis")

    def fault() -> None:
        postgres.stop()
        try:
            time.sleep(DATABASE_DOWN_SECONDS)
        finally:
            postgres.start()

    _load, measured, _ = run_load(stack, "c postgres down 10s", fault)

    # While the database is down an order is refused with a 503 (the client retries with
    # the same key); nothing else: no bare 500, no hang.
    assert set(measured.statuses) <= {"201", "503"}, measured.statuses
    assert measured.statuses.get("503", 0) > 0, measured.statuses


@pytest.mark.timeout(320)
@pytest.mark.parametrize("broker", BROKERS)
def test_worker_killed_mid_charge(stacks: SharedStacks, broker: str) -> None:
    stack = stacks.get(broker)
    sandbox = stack.sandbox

    def fault() -> None:
        # Charges take 1.5 s at the provider: some are in flight when the worker dies.
        sandbox.configure(latency_ms=CHARGE_LATENCY_MS)
        time.sleep(2 * CHARGE_LATENCY_MS / 1000)
        name, worker = stack.main_worker
        worker.kill()
        sandbox.configure(latency_ms=0)
        # Not waiting for it to be ready: orders keep coming only AFTER_SECONDS more.
        stack.start_worker(name, worker.queues, wait=False)

    _load, measured, _ = run_load(stack, f"d {broker} worker SIGKILL mid-charge", fault)

    assert measured.accepted >= RATE_PER_SECOND * (WARM_SECONDS + AFTER_SECONDS) * 0.5


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", BROKERS)
def test_every_charge_message_delivered_twice_more(stacks: SharedStacks, broker: str) -> None:
    stack = stacks.get(broker)
    duplicator = Duplicator(stack)
    republished: list[int] = []

    try:
        _load, measured, _ = run_load(
            stack,
            f"f {broker} every charge delivered twice more",
            duplicator.go,
            after_load=lambda: republished.append(duplicator.wait()),
        )
    finally:
        duplicator.close()

    # The duplicates did arrive and ran: more charge runs than orders, all but one per
    # order without effect; still one charge per paid order (run_load's checks).
    _name, worker = stack.main_worker
    runs = task_outcomes(worker)
    assert republished[0] > 0
    assert len(runs) > measured.accepted, (len(runs), republished)


@pytest.mark.timeout(360)
def test_a_slow_webhook_receiver_delays_only_its_own_deliveries(stacks: SharedStacks) -> None:
    with receiver() as hook:
        stack = stacks.get("redis")
        # Customers of this scenario's own: the first has a webhook endpoint to `hook`.
        tokens = create_customers(stack, count=CUSTOMERS, webhooks={0: hook.url})

        def fault() -> None:
            hook.delay_seconds = SLOW_RECEIVER_SECONDS
            time.sleep(SLOW_PHASE_SECONDS)

        def fast_again() -> None:
            hook.delay_seconds = 0.0

        # A load the worker keeps up with, so time to paid measures the receiver's effect
        # rather than a queue growing behind an oversubscribed pool.
        load, _measured, outcome = run_load(
            stack,
            "e webhook receiver answering after 30s",
            fault,
            tokens=tokens,
            rate=RECEIVER_RATE_PER_SECOND,
            warm_seconds=RECEIVER_WARM_SECONDS,
            after_load=fast_again,
        )
        delivered = len(hook.received)

    others = [p for p in load.placements if p.customer != 0 and p.key in outcome.paid_after]
    normal = [
        outcome.paid_after[p.key] for p in others if p.attempts[0].started < load.fault_started
    ]
    slowed = [
        outcome.paid_after[p.key] for p in others if p.attempts[0].started >= load.fault_started
    ]
    figures = (
        f"[fault e] time to paid for other customers: normal p50={median(normal) * 1000:.0f}ms "
        f"(n={len(normal)}), receiver slow p50={median(slowed) * 1000:.0f}ms (n={len(slowed)})"
    )
    REPORT.append(figures)
    print(figures)
    # The slow receiver did get its webhooks (each answered after 30 s), and the others
    # were paid as fast as before.
    assert delivered > 0
    assert normal
    assert slowed
    allowed = max(2 * median(normal), median(normal) + RECEIVER_NOISE_SECONDS)
    assert median(slowed) <= allowed, figures
