"""Fixtures for tests across real processes: the sandbox, Celery workers, their Redis.

Per test process (xdist worker): one payment sandbox, one Celery worker shared by the
tests that need it, and one redis-server of its own. That Redis is the workers' broker
(db 1) and, during these tests, the cache of both sides (db 0, same KEY_PREFIX), so
locks and circuit breaker state are shared with this process as in production. A server
of its own rather than a database of the suite's Redis: another run of the suite on this
machine (whose worker gw0 has the same key prefix, and would use the same database
number) must neither consume these messages nor flush these keys.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from ecommerce.api.permissions import Role
from ecommerce.outbox import registry
from tests import servers
from tests.integration.helpers import publishing_to
from tests.integration.processes import Broker, CeleryWorker, SandboxServer, Workers
from tests.servers import RedisServer, database_url
from tests.users.factories import UserFactory

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Short enough for tests, and what the assertions about retries and the breaker rely on.
WORKER_SETTINGS = {
    "PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS": "0.5",
    "PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS": "0.5",
    # Longer than any charge call here; a run finding the lock taken looks again after it.
    "PAYMENT_LOCK_TTL_SECONDS": "2",
    "PAYMENT_RETRY_BASE_SECONDS": "0.2",
    "PAYMENT_RETRY_CAP_SECONDS": "1",
    "PAYMENT_RETRY_MAX_ATTEMPTS": "20",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3",
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS": "1",
    "CIRCUIT_BREAKERS": "{}",
}
# Inherited from a shell, these would make a worker wipe or serve a metrics directory.
NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "CELERY_METRICS_PORT", "PYTEST_CURRENT_TEST")


@pytest.fixture(scope="session")
def integration_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integration")


@pytest.fixture(scope="session")
def sandbox_server(integration_dir: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(log_path=integration_dir / "sandbox.log")
    yield server
    server.close()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox process, up (a test may have stopped it), wiped and with faults off."""
    if not sandbox_server.running:
        sandbox_server.start()
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with servers.redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def broker(redis_server: RedisServer) -> Iterator[Broker]:
    broker = Broker(f"redis://127.0.0.1:{redis_server.port}/1")
    broker.flush()
    yield broker
    broker.flush()


def cache_url(redis_server: RedisServer) -> str:
    return f"redis://127.0.0.1:{redis_server.port}/0"


@pytest.fixture
def shared_cache(redis_server: RedisServer, settings: Any) -> None:
    """This process's cache, locks and breakers on the workers' Redis, empty, same prefix."""
    settings.CACHES = {
        "default": {
            **copy.deepcopy(settings.CACHES["default"]),
            "LOCATION": cache_url(redis_server),
        }
    }
    cache.clear()


@pytest.fixture(scope="session")
def process_env(
    django_db_setup: None, sandbox_server: SandboxServer, broker: Broker, redis_server: RedisServer
) -> dict[str, str]:
    """The environment of processes started by tests: this test database, Redis and sandbox."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DEBUG="0",
        LOG_JSON="1",
        LOG_LEVEL="INFO",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=cache_url(redis_server),
        CACHE_KEY_PREFIX=django_settings.CACHES["default"]["KEY_PREFIX"],
        CELERY_BROKER_URL=broker.url,
        PAYMENT_PROVIDER_URL=sandbox_server.url,
        **WORKER_SETTINGS,
    )
    return env


@pytest.fixture(scope="session")
def workers(
    process_env: dict[str, str], broker: Broker, integration_dir: Path
) -> Iterator[Workers]:
    workers = Workers(
        env=process_env, broker=broker, log_dir=integration_dir, name=f"it-{XDIST_WORKER}"
    )
    yield workers
    workers.stop()


@pytest.fixture
def publishing(
    workers: Workers, broker: Broker, sandbox: SandboxServer, shared_cache: None, settings: Any
) -> Iterator[Broker]:
    """This process publishes tasks to the workers' broker (no eager runs) and pays via the sandbox.

    Afterwards it waits for the live worker to acknowledge everything, so no task of this
    test still writes while the database is flushed for the next one.
    """
    settings.CELERY_BROKER_URL = broker.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PAYMENT_PROVIDER_URL = sandbox.url
    with publishing_to(broker.url):
        yield broker
    if not workers.wait_idle(timeout_seconds=20):
        log = workers.current.log_tail() if workers.current else ""
        pytest.fail(f"the worker still holds messages after the test:\n{log}")


@pytest.fixture
def live_celery(workers: Workers, publishing: Broker) -> CeleryWorker:
    """The shared worker, started with the base settings, consuming what this process publishes."""
    return workers.running()


@pytest.fixture
def no_charge_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders placed now queue no charge: the outbox has no handler for any topic."""
    monkeypatch.setattr(registry, "_handlers", {})


@pytest.fixture
def buyer() -> Any:
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def client(client_for: Any, buyer: Any) -> APIClient:
    client: APIClient = client_for(buyer)
    return client
