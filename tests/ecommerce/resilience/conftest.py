"""Fixtures for the resilience tests: both storages and fresh names."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django_redis import get_redis_connection

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


@pytest.fixture(autouse=True)
def _own_key_prefix(settings: Any) -> Iterator[None]:
    """Give each test a key prefix of its own, under its xdist worker's.

    Another run of the suite on the same Redis uses the same worker prefixes and clears
    them before each of its tests; state under a prefix of our own survives that.
    """
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] += f"-{uuid.uuid4().hex[:8]}"
    settings.CACHES = caches
    client = get_redis_connection("default")  # kept: the test may point CACHES elsewhere
    yield
    for key in client.scan_iter(f"{caches['default']['KEY_PREFIX']}:*"):
        client.delete(key)


@pytest.fixture(params=["redis", "locmem"])
def storage(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test on the shared Redis storage, then on the embedded in-process one."""
    if request.param == "locmem":
        # A fresh prefix: in-process state outlives the test, keys under it never meet again.
        settings.CACHES = {
            "default": {"BACKEND": LOCMEM, "KEY_PREFIX": f"locmem-{uuid.uuid4().hex}"}
        }
    return str(request.param)


@pytest.fixture
def name() -> str:
    """A breaker or lock name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
