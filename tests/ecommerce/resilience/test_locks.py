"""The distributed lock on real Redis (and embedded): one owner, token-checked release,
TTL expiry, blocking waits."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ecommerce.errors import Conflict
from ecommerce.resilience.locks import (
    LockNotAcquired,
    acquire_lock,
    distributed_lock,
    release_lock,
)
from tests.ecommerce.helpers import LogLines
from tests.servers import RedisServer, redis_server

SLACK_SECONDS = 0.05


@pytest.mark.usefixtures("storage")
def test_of_two_threads_only_one_gets_the_lock(name: str) -> None:
    start = threading.Barrier(2)
    release = threading.Event()

    def take() -> str | LockNotAcquired:
        start.wait()
        try:
            with distributed_lock(name, ttl_seconds=10):
                release.wait(timeout=10)
                return "held"
        except LockNotAcquired as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(take) for _ in range(2)]
        deadline = time.monotonic() + 10
        while not any(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        outcomes = [f.result() for f in futures]

    assert outcomes.count("held") == 1
    (busy,) = [outcome for outcome in outcomes if isinstance(outcome, LockNotAcquired)]
    assert isinstance(busy, Conflict)
    assert busy.code == "lock_busy"
    assert busy.extra == {"name": name, "waited_seconds": busy.waited_seconds}
    with distributed_lock(name, ttl_seconds=1):  # released on exit
        pass


@pytest.mark.usefixtures("storage")
def test_release_by_a_non_owner_does_nothing(name: str) -> None:
    token = acquire_lock(name, ttl_seconds=10)

    assert release_lock(name, "not-the-owner") is False
    with pytest.raises(LockNotAcquired):
        acquire_lock(name, ttl_seconds=10)
    assert release_lock(name, token) is True
    assert release_lock(name, token) is False
    assert acquire_lock(name, ttl_seconds=10) != token


@pytest.mark.usefixtures("storage")
def test_the_ttl_lets_the_next_owner_in_and_the_old_owner_cannot_free_its_lock(
    name: str, log_lines: LogLines
) -> None:
    with distributed_lock(name, ttl_seconds=0.2):
        with pytest.raises(LockNotAcquired):
            acquire_lock(name, ttl_seconds=10)
        time.sleep(0.2 + SLACK_SECONDS)  # a holder too slow for its TTL
        successor = acquire_lock(name, ttl_seconds=10)
    # The slow holder's exit left the successor's lock alone.
    with pytest.raises(LockNotAcquired):
        acquire_lock(name, ttl_seconds=10)
    assert release_lock(name, successor) is True

    expired = [line for line in log_lines() if line["event"] == "lock_expired_before_release"]
    assert [(line["level"], line["lock"]) for line in expired] == [("warning", name)]


@pytest.mark.usefixtures("storage")
def test_blocking_timeout_waits_for_the_holder_to_release(name: str) -> None:
    token = acquire_lock(name, ttl_seconds=10)
    timer = threading.Timer(0.2, release_lock, args=(name, token))
    timer.start()
    started = time.monotonic()
    try:
        with distributed_lock(name, ttl_seconds=10, blocking_timeout_seconds=5):
            waited = time.monotonic() - started
    finally:
        timer.cancel()

    assert 0.15 <= waited < 2


@pytest.mark.usefixtures("storage")
def test_blocking_timeout_gives_up_when_the_holder_keeps_the_lock(name: str) -> None:
    acquire_lock(name, ttl_seconds=10)
    started = time.monotonic()

    with (
        pytest.raises(LockNotAcquired) as busy,
        distributed_lock(name, ttl_seconds=10, blocking_timeout_seconds=0.2),
    ):
        pytest.fail("the block ran without the lock")

    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1
    assert 0.2 <= busy.value.waited_seconds < 1


@pytest.mark.usefixtures("storage")
def test_blocking_waiter_gets_the_lock_when_the_holders_ttl_runs_out(name: str) -> None:
    acquire_lock(name, ttl_seconds=0.2)  # never released

    started = time.monotonic()
    token = acquire_lock(name, ttl_seconds=10, blocking_timeout_seconds=5)

    assert 0.15 <= time.monotonic() - started < 2
    assert release_lock(name, token) is True


@pytest.mark.usefixtures("storage")
def test_locks_with_different_names_do_not_meet(name: str) -> None:
    with (
        distributed_lock(f"{name}:a", ttl_seconds=10) as first,
        distributed_lock(f"{name}:b", ttl_seconds=10) as second,
    ):
        assert first
        assert second
        assert first != second


@pytest.mark.usefixtures("storage")
def test_nonsense_timeouts_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        acquire_lock(name, ttl_seconds=0)
    with pytest.raises(ValueError, match="blocking_timeout_seconds"):
        acquire_lock(name, ttl_seconds=1, blocking_timeout_seconds=-1)


def test_the_redis_key_carries_the_cache_prefix(name: str) -> None:
    from django_redis import get_redis_connection

    token = acquire_lock(name, ttl_seconds=10)

    client = get_redis_connection("default")
    key = cache.make_key(f"distributed-lock:{name}")
    assert key.startswith(f"{cache.key_prefix}:")
    assert client.get(key) == token.encode()
    assert 9000 < client.pttl(key) <= 10000


# --- Redis frozen or gone: every call gives up after CACHE_SOCKET_TIMEOUT_SECONDS ----------

TIMEOUT_SECONDS = 0.25


@pytest.fixture
def frozen_redis(settings: Any) -> Iterator[RedisServer]:
    """The locks' Redis is a throwaway server, resumed (SIGCONT) at the end whatever happens."""
    with redis_server() as server:
        settings.CACHES = server.cache_settings(timeout_seconds=TIMEOUT_SECONDS)
        try:
            yield server
        finally:
            if server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGCONT)


def test_acquiring_on_a_frozen_redis_fails_after_the_socket_timeout_not_the_wait(
    name: str, frozen_redis: RedisServer
) -> None:
    os.kill(frozen_redis.process.pid, signal.SIGSTOP)

    started = time.monotonic()
    with pytest.raises(RedisTimeoutError):
        acquire_lock(name, ttl_seconds=10, blocking_timeout_seconds=5)
    elapsed = time.monotonic() - started

    # The socket timeout, not the 5 s wait (a margin for a busy machine).
    assert TIMEOUT_SECONDS <= elapsed < 1.0


def test_acquiring_on_a_killed_redis_fails_at_once(name: str, frozen_redis: RedisServer) -> None:
    frozen_redis.kill()

    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        acquire_lock(name, ttl_seconds=10, blocking_timeout_seconds=5)

    assert time.monotonic() - started < 1.0  # refused at once, no 5 s wait


def test_a_release_that_redis_cannot_take_is_logged_and_the_ttl_frees_the_lock(
    name: str, frozen_redis: RedisServer, log_lines: LogLines
) -> None:
    ran = []
    started = time.monotonic()
    with distributed_lock(name, ttl_seconds=1):
        ran.append(True)
        os.kill(frozen_redis.process.pid, signal.SIGSTOP)
    elapsed = time.monotonic() - started
    os.kill(frozen_redis.process.pid, signal.SIGCONT)

    assert ran == [True]
    assert elapsed < 1.0
    [line] = [line for line in log_lines() if line["event"] == "lock_release_failed"]
    assert (line["lock"], line["error"]) == (name, "TimeoutError: Timeout reading from socket")
    # Nobody freed it: the next owner gets in once its TTL has run out, not before.
    with pytest.raises(LockNotAcquired):
        acquire_lock(name, ttl_seconds=1)
    assert acquire_lock(name, ttl_seconds=1, blocking_timeout_seconds=2)
