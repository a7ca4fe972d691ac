"""A distributed lock with an owner token and a TTL, on Redis (embedded: in this process).

    with distributed_lock(f"order:{order_id}:charge", ttl_seconds=30):
        gateway.charge(...)

The lock guards external side effects only (do not call the provider twice at once for one
order). It is not what keeps data right: the row lock (`select_for_update`) and the
provider's idempotency key stay the guarantee. A TTL can expire under a slow holder (a
paused process, a hung call), and then a second holder gets in; everything under the lock
must stay safe when that happens.

Acquire is `SET key token NX PX ttl`; release deletes the key only if it still holds our
token (a Lua compare-and-delete), so a holder whose TTL expired never frees its successor's
lock. A Redis failure while acquiring propagates (a lock we cannot confirm is not held);
a failure while releasing is logged and the TTL frees the key.

Calls go through the cache's Redis connection pool, so each gives up after
CACHE_SOCKET_TIMEOUT_SECONDS (connect and read): a frozen Redis fails an acquire or a
release after that long, not after `blocking_timeout_seconds` (a failed call is not
retried), so a request is never held up by a lock's Redis.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from redis.exceptions import NoScriptError, RedisError

from ecommerce.observability.logging import get_logger
from ecommerce.resilience.breaker_storage import uses_redis
from ecommerce.resilience.exceptions import LockNotAcquired

logger = get_logger(__name__)

# Between attempts while blocking on Redis: short against typical holds, cheap for Redis.
POLL_SECONDS = 0.02

_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RELEASE_SHA = hashlib.sha1(_RELEASE_IF_OWNER.encode(), usedforsecurity=False).hexdigest()


def _key(name: str) -> str:
    # Not "lock:", which caching.py uses for its fill locks.
    return cache.make_key(f"distributed-lock:{name}")


def _redis() -> Any:
    from django_redis import get_redis_connection

    return get_redis_connection("default")


class _LocalLocks:
    """Embedded mode: owner tokens with deadlines in a dict, waiters on one condition."""

    condition = threading.Condition()
    held: dict[str, tuple[str, float]] = {}

    @classmethod
    def try_acquire(cls, key: str, token: str, ttl_seconds: float) -> bool:
        # Caller holds `condition`.
        now = time.monotonic()
        current = cls.held.get(key)
        if current is not None and current[1] > now:
            return False
        cls.held[key] = (token, now + ttl_seconds)
        return True

    @classmethod
    def acquire(cls, key: str, token: str, ttl_seconds: float, timeout_seconds: float) -> bool:
        deadline = time.monotonic() + timeout_seconds
        with cls.condition:
            while not cls.try_acquire(key, token, ttl_seconds):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                current = cls.held.get(key)
                expires_in = current[1] - time.monotonic() if current else 0.0
                # Wake at a release (notify) or when the holder's TTL runs out.
                cls.condition.wait(timeout=max(0.0, min(remaining, expires_in)))
            return True

    @classmethod
    def release(cls, key: str, token: str) -> bool:
        with cls.condition:
            current = cls.held.get(key)
            if current is None or current[0] != token:
                return False
            del cls.held[key]
            cls.condition.notify_all()
            # Like Redis, where an expired key is gone: report that the TTL ran out first.
            return current[1] > time.monotonic()


def acquire_lock(name: str, *, ttl_seconds: float, blocking_timeout_seconds: float = 0.0) -> str:
    """Take the lock `name` for `ttl_seconds`; return the owner token that releases it.

    Waits up to `blocking_timeout_seconds` for the current holder. Raises LockNotAcquired
    when the lock is still held then; RedisError when Redis fails.
    """
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds!r}")
    if blocking_timeout_seconds < 0:
        raise ValueError(f"blocking_timeout_seconds must be >= 0, not {blocking_timeout_seconds!r}")
    token = uuid.uuid4().hex
    key = _key(name)
    started = time.monotonic()
    if not uses_redis():
        if _LocalLocks.acquire(key, token, ttl_seconds, blocking_timeout_seconds):
            return token
        raise LockNotAcquired(name=name, waited_seconds=round(time.monotonic() - started, 3))
    client = _redis()
    ttl_ms = max(1, round(ttl_seconds * 1000))
    deadline = started + blocking_timeout_seconds
    while not client.set(key, token, nx=True, px=ttl_ms):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockNotAcquired(name=name, waited_seconds=round(time.monotonic() - started, 3))
        time.sleep(min(POLL_SECONDS, remaining))
    return token


def release_lock(name: str, token: str) -> bool:
    """Free the lock `name` if `token` still owns it; True when it did.

    Raises RedisError when Redis fails.
    """
    key = _key(name)
    if not uses_redis():
        return _LocalLocks.release(key, token)
    client = _redis()
    try:
        released = client.evalsha(_RELEASE_SHA, 1, key, token)
    except NoScriptError:
        released = client.eval(_RELEASE_IF_OWNER, 1, key, token)
    return bool(released)


@contextmanager
def distributed_lock(
    name: str, *, ttl_seconds: float, blocking_timeout_seconds: float = 0.0
) -> Iterator[str]:
    """Hold the lock `name` for the block (at most `ttl_seconds`); yields the owner token.

    Raises LockNotAcquired, without running the block, when another owner still holds
    it after `blocking_timeout_seconds`; RedisError when Redis fails while acquiring.
    """
    token = acquire_lock(
        name, ttl_seconds=ttl_seconds, blocking_timeout_seconds=blocking_timeout_seconds
    )
    try:
        yield token
    finally:
        try:
            if not release_lock(name, token):
                logger.warning("lock_expired_before_release", lock=name, ttl_seconds=ttl_seconds)
        except RedisError as exc:
            logger.warning(
                "lock_release_failed", lock=name, error=f"{type(exc).__name__}: {exc}"[:200]
            )


__all__ = ["LockNotAcquired", "acquire_lock", "distributed_lock", "release_lock"]
