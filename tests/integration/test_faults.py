"""The shop under a steady order load while its dependencies fail, as real processes.

gunicorn (2 workers), the Procfile's Celery workers, beat with short intervals, the
payment sandbox, a throwaway redis-server (cache and broker) and a throwaway PostgreSQL
cluster (tests/integration/faults.py). Each scenario places orders at a steady rate
through the HTTP API with idempotency keys, injects one fault by signal, stops the load,
and then, within a bounded settle time and without any manual command, requires:
every order answered 201 is paid (or declined by its card), charged exactly once at the
provider and notified; nothing waits in the outbox; `manage.py check_invariants` passes;
no request took longer than a few seconds. The figures are printed (run with -s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.faults import (
    FaultDatabase,
    Figures,
    LoadGenerator,
    Stack,
    base_env,
    broken_checks,
    check_invariants,
    create_customers,
    figures,
    now_utc,
    settle,
)
from tests.integration.processes import SandboxServer
from tests.servers import postgres_server

pytestmark = [pytest.mark.slow]

RATE_PER_SECOND = 12.0
CUSTOMERS = 6
WARM_SECONDS = 4.0
AFTER_SECONDS = 4.0
SETTLE_SECONDS = 60.0
# What any client may wait for an answer, fault or not (gunicorn's timeout is 30 s).
MAX_REQUEST_SECONDS = 5.0
REPORT: list[str] = []


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def sandbox(fault_dir: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(log_path=fault_dir / "sandbox.log")
    yield server
    server.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def database(postgres: Any, sandbox: SandboxServer) -> FaultDatabase:
    env = base_env(sandbox_url=sandbox.url)
    env.update(ALLOW_LOCAL_STATE="1", REDIS_URL="", CELERY_BROKER_URL="")
    return FaultDatabase(postgres, env=env)


@pytest.fixture
def make_stack(
    database: FaultDatabase, sandbox: SandboxServer, fault_dir: Path, request: Any
) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(**extra_env: str) -> Stack:
        sandbox.configure(latency_ms=0, failure_rate=0.0, respond_after_commit_delay_ms=0)
        stack = Stack(
            database=database,
            sandbox=sandbox,
            directory=fault_dir / request.node.name,
            extra_env=extra_env,
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


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
) -> tuple[LoadGenerator, Figures]:
    """Load, fault, more load; then settle and check. Returns the load and its figures."""
    since = now_utc()
    load = LoadGenerator(
        url=stack.url,
        tokens=tokens or create_customers(stack, count=CUSTOMERS),
        rate_per_second=rate,
    )
    load.start()
    time.sleep(WARM_SECONDS)
    fault()
    time.sleep(AFTER_SECONDS)
    load.stop()
    settle_seconds, outcome = settle(stack, load, since=since, timeout_seconds=SETTLE_SECONDS)
    measured = figures(name, load, outcome, settle_seconds)
    REPORT.append(measured.line())
    print(measured.line())
    report = check_invariants(stack, since=since)
    assert not outcome.problems, f"{measured.line()}\n" + "\n".join(outcome.problems[:30])
    assert report["exit_code"] == 0, "\n".join(broken_checks(report))
    assert measured.max_ms <= MAX_REQUEST_SECONDS * 1000, measured.line()
    return load, measured


def test_redis_killed_and_restarted_empty(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()

    def fault() -> None:
        stack.redis.restart_empty()

    _load, measured = run_load(stack, "a redis SIGKILL + empty restart", fault)

    assert measured.accepted >= RATE_PER_SECOND * (WARM_SECONDS + AFTER_SECONDS) * 0.5
