"""Read-through caching of rendered bytes: generation-checked fills, single-flight, fallback.

- A fill only lands if the key's generation is unchanged since before the database read,
  so a reader that raced a writer can never store the old value after the writer's
  invalidation (which bumps the generation and deletes the key on commit).
- On a miss one caller takes a short lock and reads the database; the others wait for its
  value, so a cold key causes one database read, not one per request.
- When the cache errors or is slow (short socket timeouts), reads go to the database, a
  warning is logged and counted, and the cache is bypassed for CACHE_BYPASS_SECONDS so a
  hung Redis costs one timeout per process, not one per request.
- An invalidation that cannot reach Redis is kept (in this process, the newest
  MISSED_INVALIDATIONS_MAX) and replayed before this process next uses the cache, so a
  value cached before an outage is not served after it; replaying is idempotent (one more
  generation bump, one more delete). A process that dies first loses them: the TTLs bound
  that staleness.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import (
    CACHE_COMPUTES,
    CACHE_INVALIDATION_ERRORS,
    CACHE_REQUESTS,
)

logger = get_logger(__name__)

# Stored for "looked up, does not exist", so missing rows are protected from a herd too.
ABSENT = b"\x00absent"

_FILL_IF_GENERATION = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_bypass_until = 0.0
_bypass_lock = threading.Lock()

# Invalidations that failed, oldest first: (cache name, generation keys, keys).
MISSED_INVALIDATIONS_MAX = 1000
_missed: deque[tuple[str, tuple[str, ...], tuple[str, ...]]] = deque(
    maxlen=MISSED_INVALIDATIONS_MAX
)
_missed_lock = threading.Lock()


class Piggyback(Protocol):
    """Commands of another concern sent in the same round trip as a cache read (the rate
    limit's counters: ecommerce.api.ratelimit.PendingCount)."""

    def queue(self, pipe: Any) -> int:
        """Add commands to `pipe`; return how many results they take."""
        ...

    def settle(self, results: list[Any]) -> None:
        """Receive those results (may raise: the read is then abandoned)."""
        ...


class _CacheDown(Exception):
    """Any failure of the cache itself (as opposed to of the computation)."""


def _uses_redis() -> bool:
    return settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"


class _Store:
    """The few atomic operations the algorithm needs, on Redis or (embedded) on locmem."""

    def __init__(self) -> None:
        self.redis: Any = None
        if _uses_redis():
            from django_redis import get_redis_connection

            self.redis = get_redis_connection("default")

    def _key(self, key: str) -> str:
        return full_key(key)

    def get(self, key: str) -> bytes | None:
        if self.redis is not None:
            return self.redis.get(self._key(key))
        return cache.get(key)

    def get_with(self, key: str, piggyback: Piggyback | None) -> bytes | None:
        """GET `key`, in one round trip with `piggyback`'s commands (Redis only: elsewhere
        the piggyback is left unsettled, for its owner to send alone)."""
        if piggyback is None or self.redis is None:
            return self.get(key)
        pipe = self.redis.pipeline(transaction=False)
        taken = piggyback.queue(pipe)
        pipe.get(self._key(key))
        results = pipe.execute()
        piggyback.settle(results[:taken])
        value: bytes | None = results[taken]
        return value

    def generation(self, key: str) -> bytes:
        if self.redis is not None:
            return self.redis.get(self._key(key)) or b"0"
        return str(cache.get(key, 0)).encode()

    def try_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        if self.redis is not None:
            return bool(self.redis.set(self._key(key), token, nx=True, px=int(ttl_seconds * 1000)))
        return cache.add(key, token, timeout=ttl_seconds)

    def unlock(self, key: str, token: str) -> None:
        if self.redis is not None:
            self.redis.eval(_RELEASE_IF_OWNER, 1, self._key(key), token)
        elif cache.get(key) == token:
            cache.delete(key)

    def fill(
        self, generation_key: str, key: str, generation: bytes, value: bytes, ttl_seconds: int
    ) -> None:
        if self.redis is not None:
            self.redis.eval(
                _FILL_IF_GENERATION,
                2,
                self._key(generation_key),
                self._key(key),
                generation,
                value,
                ttl_seconds * 1000,
            )
        elif self.generation(generation_key) == generation:
            cache.set(key, value, timeout=ttl_seconds)

    def invalidate(self, generation_keys: Iterable[str], keys: Iterable[str]) -> None:
        ttl = settings.CACHE_GENERATION_TTL_SECONDS
        if self.redis is not None:
            pipe = self.redis.pipeline(transaction=True)
            for generation_key in generation_keys:
                pipe.incr(self._key(generation_key))
                pipe.expire(self._key(generation_key), ttl)
            for key in keys:
                pipe.delete(self._key(key))
            pipe.execute()
            return
        for generation_key in generation_keys:
            cache.set(generation_key, int(cache.get(generation_key, 0)) + 1, timeout=ttl)
        cache.delete_many(list(keys))


def _store() -> _Store:
    try:
        return _Store()
    except RedisError as exc:
        raise _CacheDown from exc


def _bypassing() -> bool:
    return time.monotonic() < _bypass_until


def _start_bypass() -> None:
    global _bypass_until
    with _bypass_lock:
        _bypass_until = time.monotonic() + settings.CACHE_BYPASS_SECONDS


def _cache_failed(name: str, exc: BaseException) -> None:
    CACHE_REQUESTS.labels(name, "error").inc()
    _start_bypass()
    logger.warning(
        "cache_unavailable",
        cache=name,
        error=f"{type(exc).__name__}: {exc}"[:200],
        bypass_seconds=settings.CACHE_BYPASS_SECONDS,
    )


def reset_bypass() -> None:
    """Forget previous cache failures, missed invalidations included (tests)."""
    global _bypass_until
    _bypass_until = 0.0
    with _missed_lock:
        _missed.clear()


def _replay_missed(store: _Store) -> None:
    """Apply the invalidations that failed earlier, before anything is read. Raises
    RedisError (they stay kept) when the cache still fails."""
    with _missed_lock:
        missed = list(_missed)
        _missed.clear()
    try:
        store.invalidate(
            [key for _, generation_keys, _ in missed for key in generation_keys],
            [key for _, _, keys in missed for key in keys],
        )
    except BaseException:
        with _missed_lock:
            _missed.extendleft(reversed(missed))
        raise
    logger.info("cache_invalidations_replayed", count=len(missed))


def _ready_store() -> _Store:
    store = _store()
    if _missed:
        _replay_missed(store)
    return store


def full_key(key: str) -> str:
    """`key` as the cache stores it in Redis (with its prefix and version)."""
    return cache.make_key(key)


def ready_for_reads() -> bool:
    """Whether a read may go straight to Redis: it has not failed just now, and no
    invalidation waits to be replayed (`read_through` replays it first)."""
    return _uses_redis() and not _bypassing() and not _missed


def current_generation(
    name: str, generation_key: str, *, piggyback: Piggyback | None = None
) -> bytes | None:
    """The generation counter's value, or None when the cache cannot be used.

    `piggyback`'s commands go in the same round trip."""
    if _bypassing():
        return None
    try:
        store = _ready_store()
        if piggyback is None or store.redis is None:
            return store.generation(generation_key)
        return store.get_with(generation_key, piggyback) or b"0"
    except (RedisError, _CacheDown) as exc:
        _cache_failed(name, exc)
        return None


def read_through(
    *,
    name: str,
    key: str,
    generation_key: str,
    compute: Callable[[], bytes | None],
    ttl_seconds: int,
    piggyback: Piggyback | None = None,
) -> bytes | None:
    """Return the cached bytes for `key`, computing and storing them once on a miss.

    `compute` returns the rendered value, or None when the thing does not exist (cached
    briefly as ABSENT). Exceptions from `compute` propagate; cache failures never do.
    `piggyback`'s commands are sent with the read of `key` (one round trip), and settled
    before anything is computed.
    """
    compute = _counted(name, compute)
    if _bypassing():
        CACHE_REQUESTS.labels(name, "bypass").inc()
        return compute()
    try:
        store = _ready_store()
        cached = store.get_with(key, piggyback)
    except (RedisError, _CacheDown) as exc:
        _cache_failed(name, exc)
        return compute()
    if cached is not None:
        CACHE_REQUESTS.labels(name, "hit").inc()
        return None if cached == ABSENT else cached
    CACHE_REQUESTS.labels(name, "miss").inc()
    try:
        return _fill_single_flight(store, key, generation_key, compute, ttl_seconds)
    except (RedisError, _CacheDown) as exc:
        _cache_failed(name, exc)
        return compute()


def _counted(name: str, compute: Callable[[], bytes | None]) -> Callable[[], bytes | None]:
    def counted() -> bytes | None:
        CACHE_COMPUTES.labels(name).inc()
        return compute()

    return counted


def _fill_single_flight(
    store: _Store,
    key: str,
    generation_key: str,
    compute: Callable[[], bytes | None],
    ttl_seconds: int,
) -> bytes | None:
    lock_key = f"lock:{key}"
    lock_ttl = settings.CACHE_FILL_LOCK_SECONDS
    deadline = time.monotonic() + lock_ttl
    token = uuid.uuid4().hex
    while True:
        if store.try_lock(lock_key, token, lock_ttl):
            try:
                generation = store.generation(generation_key)
                value = compute()
                absent_ttl = min(ttl_seconds, settings.CACHE_ABSENT_TTL_SECONDS)
                if value is None:
                    store.fill(generation_key, key, generation, ABSENT, absent_ttl)
                else:
                    store.fill(generation_key, key, generation, value, ttl_seconds)
                return value
            finally:
                store.unlock(lock_key, token)
        time.sleep(settings.CACHE_FILL_POLL_SECONDS)
        cached = store.get(key)
        if cached is not None:
            return None if cached == ABSENT else cached
        if time.monotonic() > deadline:
            # The filler is too slow or gone: serve from the database rather than wait.
            return compute()


def invalidate(*, name: str, generation_keys: Iterable[str], keys: Iterable[str]) -> None:
    """Bump generations and delete keys; call it on commit of the change it reflects.

    A failure, or Redis being bypassed after one, keeps it for replay before this process
    next uses the cache.
    """
    entry = (name, tuple(generation_keys), tuple(keys))
    if _bypassing():  # Redis just failed here: keep it without paying another timeout
        with _missed_lock:
            _missed.append(entry)
        CACHE_INVALIDATION_ERRORS.labels(name).inc()
        return
    try:
        _ready_store().invalidate(list(entry[1]), list(entry[2]))
    except (RedisError, _CacheDown) as exc:
        _start_bypass()
        with _missed_lock:
            _missed.append(entry)
        CACHE_INVALIDATION_ERRORS.labels(name).inc()
        logger.error(
            "cache_invalidation_failed",
            cache=name,
            error=f"{type(exc).__name__}: {exc}"[:200],
            kept_for_replay=len(_missed),
        )


# --- Validators stored with rendered bytes ------------------------------------------------
# An entry is `#<etag> <unix seconds>\n<body>`: the body's digest (its strong ETag) and
# when it was rendered (its Last-Modified), computed once per fill so that a conditional
# request is answered from the entry without hashing or rendering anything. A JSON body
# never starts with "#", so bytes without the line are a bare body (validated by hashing).
STAMP_MARK = b"#"


class Stamped:
    """A rendered body with its validators."""

    __slots__ = ("body", "etag", "last_modified")

    def __init__(self, body: bytes, etag: str, last_modified: int | None) -> None:
        self.body = body
        self.etag = etag  # quoted, as in the ETag header
        self.last_modified = last_modified  # unix seconds, or None when unknown

    @classmethod
    def of(cls, entry: bytes) -> Stamped:
        """Read an entry made by `stamp`; a bare body gets its digest and no date."""
        if entry[:1] == STAMP_MARK:
            header, _, body = entry.partition(b"\n")
            etag, _, seconds = header[1:].decode("ascii").partition(" ")
            return cls(body, f'"{etag}"', int(seconds))
        return cls(entry, f'"{_digest(entry)}"', None)


def _digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def stamp(body: bytes) -> bytes:
    """`body` as an entry carrying its ETag and the time it was rendered (now)."""
    return b"#%s %d\n%s" % (_digest(body).encode("ascii"), int(time.time()), body)
