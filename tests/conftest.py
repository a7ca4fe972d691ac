"""Suite-wide set-up: real services only, fast hashing, per-worker cache keys, API clients."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db.backends.signals import connection_created
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ecommerce.outbox import registry as outbox_registry
from tests import flush
from tests.preflight import service_problems


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller checks once for all workers
        problems = service_problems()
        if problems:
            pytest.exit("\n".join(problems), returncode=3)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    flush.install()
    # Each xdist worker gets its own key space, so clearing it never touches another's.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    settings.CACHES["default"]["KEY_PREFIX"] = f"test-{worker}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (they start processes or wait out timeouts) run first, each
    module's tests kept together: with `--dist worksteal` (make test) the quick tests then
    fill both workers' gaps, instead of one worker finishing a queue of slow ones alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _allow_audit_truncate(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Transactional tests end with a flush (TRUNCATE of every table): the audit log's
    trigger lets this session truncate it (migration audit.0001)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET ecommerce.audit_truncate = 'allow'")


connection_created.connect(_allow_audit_truncate, dispatch_uid="tests.allow_audit_truncate")


@functools.cache
def _cleanup_redis() -> redis.Redis:
    """The cache's Redis for the suite's own clean-up, with a timeout of seconds: the cache's
    0.25-s socket timeout is for requests, and a busy 2-core machine (three xdist workers,
    the fault tests' processes) can stall Redis longer than that between two tests."""
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=10)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Drop this worker's keys (their prefix is the worker's): a few SCANs of a thousand."""
    client = _cleanup_redis()
    keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _outbox_hands_off() -> None:
    """A broker failure in one test must not leave the next one's hand-offs paused."""
    outbox_registry.resume_hand_off()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """When a transactional test ended with Django's own flush (tests/flush.py), put the
    role groups and tax classes back after every fixture of the test is torn down: the
    flush is the database fixture's teardown, and a fixture's teardown (a migration test
    migrating forward again) may come after it."""
    yield
    with item.config.stash[blocking_manager_key].unblock():
        flush.restore_after_django_flush()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[Any], APIClient]:
    """An API client that sends a fresh access token for `user`."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make
