"""Where circuit breaker state lives: Redis (shared by every process) or, embedded, this process.

Every state change is one atomic step: a Lua script on Redis, a critical section under a
process lock in embedded mode. Both storages implement the same transitions, so the
breaker above them holds only policy. Times come from one clock per storage (Redis'
`TIME`, so processes with skewed clocks still agree on when the recovery timeout ends).

Keys are built with `cache.make_key`, so the cache's KEY_PREFIX (per deployment, per test
worker) applies: `circuit-breaker:<name>` is a hash (state, failures, opened_at_ms),
`circuit-breaker:<name>:trial` holds the half-open trial's token with a TTL, and
`circuit-breaker:names` is the set of breakers that ever recorded a call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import NoScriptError

NAMES_KEY = "circuit-breaker:names"


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


Transition = tuple[CircuitState, CircuitState]


@dataclass(frozen=True)
class Admission:
    """The storage's answer to "may this call go ahead?".

    `trial_token` is set when the call is the half-open trial (it alone may close or
    re-open the breaker); `retry_after_ms` is meaningful only when refused.
    """

    allowed: bool
    trial_token: str | None = None
    transition: Transition | None = None
    retry_after_ms: int = 0


@dataclass(frozen=True)
class StoredState:
    state: CircuitState
    failures: int
    opened_at_ms: int | None


class BreakerStorage(Protocol):
    def admit(self, name: str, *, recovery_ms: int, trial_ttl_ms: int, token: str) -> Admission: ...

    def record_success(self, name: str, *, trial_token: str | None) -> Transition | None: ...

    def record_failure(
        self, name: str, *, trial_token: str | None, threshold: int
    ) -> Transition | None: ...

    def release_trial(self, name: str, *, trial_token: str) -> None: ...

    def read(self, name: str) -> StoredState: ...

    def reset(self, name: str) -> Transition | None: ...

    def names(self) -> set[str]: ...


def _state_key(name: str) -> str:
    return cache.make_key(f"circuit-breaker:{name}")


def _trial_key(name: str) -> str:
    return cache.make_key(f"circuit-breaker:{name}:trial")


def _names_key() -> str:
    return cache.make_key(NAMES_KEY)


def _transition(result: list[Any]) -> Transition | None:
    if not result[0]:
        return None
    return CircuitState(_text(result[0])), CircuitState(_text(result[1]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# KEYS: state hash, trial key. ARGV: recovery ms, trial TTL ms, token.
# Returns {verdict, from, to, retry_after_ms}; verdict 0 refused, 1 allowed, 2 trial.
_ADMIT = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, '', '', 0} end
local recovery = tonumber(ARGV[1])
if state == 'open' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at_ms') or '0')
  local wait = opened + recovery - now
  if wait > 0 then return {0, '', '', wait} end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
  return {2, 'open', 'half_open', 0}
end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then return {2, '', '', 0} end
return {0, '', '', math.max(0, math.min(redis.call('PTTL', KEYS[2]), recovery))}
"""

# KEYS: state hash, trial key, names set. ARGV: name, trial token ('' for an ordinary call).
_RECORD_SUCCESS = """
redis.call('SADD', KEYS[3], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  if tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') > 0 then
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
  return {'', ''}
end
if state == 'half_open' and ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
  redis.call('HDEL', KEYS[1], 'opened_at_ms')
  return {'half_open', 'closed'}
end
return {'', ''}
"""

# KEYS: state hash, trial key, names set. ARGV: name, trial token, failure threshold.
_RECORD_FAILURE = """
redis.call('SADD', KEYS[3], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if state == 'closed' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at_ms', now)
    return {'closed', 'open'}
  end
  return {'', ''}
end
if state == 'half_open' and ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at_ms', now)
  return {'half_open', 'open'}
end
return {'', ''}
"""

# KEYS: trial key. ARGV: token.
_RELEASE_TRIAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: state hash, trial key, names set. ARGV: name.
_RESET = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], ARGV[1])
if state == 'closed' then return {'', ''} end
return {state, 'closed'}
"""


class RedisBreakerStorage:
    """Breaker state in Redis, one Lua script per transition."""

    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self.redis: Any = get_redis_connection("default")

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        # EVALSHA first: the script body crosses the network only once per Redis restart.
        sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        try:
            return self.redis.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return self.redis.eval(script, len(keys), *keys, *args)

    def admit(self, name: str, *, recovery_ms: int, trial_ttl_ms: int, token: str) -> Admission:
        verdict, from_state, to_state, retry_after_ms = self._run(
            _ADMIT, [_state_key(name), _trial_key(name)], [recovery_ms, trial_ttl_ms, token]
        )
        return Admission(
            allowed=verdict != 0,
            trial_token=token if verdict == 2 else None,
            transition=_transition([from_state, to_state]),
            retry_after_ms=int(retry_after_ms),
        )

    def record_success(self, name: str, *, trial_token: str | None) -> Transition | None:
        keys = [_state_key(name), _trial_key(name), _names_key()]
        return _transition(self._run(_RECORD_SUCCESS, keys, [name, trial_token or ""]))

    def record_failure(
        self, name: str, *, trial_token: str | None, threshold: int
    ) -> Transition | None:
        keys = [_state_key(name), _trial_key(name), _names_key()]
        return _transition(self._run(_RECORD_FAILURE, keys, [name, trial_token or "", threshold]))

    def release_trial(self, name: str, *, trial_token: str) -> None:
        self._run(_RELEASE_TRIAL, [_trial_key(name)], [trial_token])

    def read(self, name: str) -> StoredState:
        state, failures, opened_at_ms = self.redis.hmget(
            _state_key(name), "state", "failures", "opened_at_ms"
        )
        return StoredState(
            state=CircuitState(_text(state)) if state else CircuitState.CLOSED,
            failures=int(failures or 0),
            opened_at_ms=int(opened_at_ms) if opened_at_ms else None,
        )

    def reset(self, name: str) -> Transition | None:
        keys = [_state_key(name), _trial_key(name), _names_key()]
        return _transition(self._run(_RESET, keys, [name]))

    def names(self) -> set[str]:
        return {_text(member) for member in self.redis.smembers(_names_key())}


@dataclass
class _LocalEntry:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at_ms: int | None = None
    trial_token: str | None = None
    trial_expires_ms: int = 0


class LocalBreakerStorage:
    """Embedded mode: the same transitions on a dict, under one lock, in this process only."""

    _lock = threading.Lock()
    _entries: dict[str, _LocalEntry] = {}
    _names: dict[str, set[str]] = {}

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    def _entry(self, name: str) -> _LocalEntry:
        return self._entries.setdefault(_state_key(name), _LocalEntry())

    def _trial_is(self, entry: _LocalEntry, token: str | None) -> bool:
        return (
            bool(token) and entry.trial_token == token and entry.trial_expires_ms > self._now_ms()
        )

    def admit(self, name: str, *, recovery_ms: int, trial_ttl_ms: int, token: str) -> Admission:
        with self._lock:
            entry = self._entry(name)
            now = self._now_ms()
            if entry.state is CircuitState.CLOSED:
                return Admission(allowed=True)
            if entry.state is CircuitState.OPEN:
                wait = (entry.opened_at_ms or 0) + recovery_ms - now
                if wait > 0:
                    return Admission(allowed=False, retry_after_ms=wait)
                entry.state = CircuitState.HALF_OPEN
                entry.trial_token, entry.trial_expires_ms = token, now + trial_ttl_ms
                return Admission(
                    allowed=True,
                    trial_token=token,
                    transition=(CircuitState.OPEN, CircuitState.HALF_OPEN),
                )
            if entry.trial_token is None or entry.trial_expires_ms <= now:
                entry.trial_token, entry.trial_expires_ms = token, now + trial_ttl_ms
                return Admission(allowed=True, trial_token=token)
            wait = max(0, min(entry.trial_expires_ms - now, recovery_ms))
            return Admission(allowed=False, retry_after_ms=wait)

    def record_success(self, name: str, *, trial_token: str | None) -> Transition | None:
        with self._lock:
            self._names.setdefault(_names_key(), set()).add(name)
            entry = self._entry(name)
            if entry.state is CircuitState.CLOSED:
                entry.failures = 0
                return None
            if entry.state is CircuitState.HALF_OPEN and self._trial_is(entry, trial_token):
                self._entries[_state_key(name)] = _LocalEntry()
                return CircuitState.HALF_OPEN, CircuitState.CLOSED
            return None

    def record_failure(
        self, name: str, *, trial_token: str | None, threshold: int
    ) -> Transition | None:
        with self._lock:
            self._names.setdefault(_names_key(), set()).add(name)
            entry = self._entry(name)
            if entry.state is CircuitState.CLOSED:
                entry.failures += 1
                if entry.failures >= threshold:
                    entry.state, entry.opened_at_ms = CircuitState.OPEN, self._now_ms()
                    return CircuitState.CLOSED, CircuitState.OPEN
                return None
            if entry.state is CircuitState.HALF_OPEN and self._trial_is(entry, trial_token):
                entry.failures += 1
                entry.state, entry.opened_at_ms = CircuitState.OPEN, self._now_ms()
                entry.trial_token, entry.trial_expires_ms = None, 0
                return CircuitState.HALF_OPEN, CircuitState.OPEN
            return None

    def release_trial(self, name: str, *, trial_token: str) -> None:
        with self._lock:
            entry = self._entry(name)
            if entry.trial_token == trial_token:
                entry.trial_token, entry.trial_expires_ms = None, 0

    def read(self, name: str) -> StoredState:
        with self._lock:
            entry = self._entries.get(_state_key(name), _LocalEntry())
            return StoredState(entry.state, entry.failures, entry.opened_at_ms)

    def reset(self, name: str) -> Transition | None:
        with self._lock:
            self._names.setdefault(_names_key(), set()).add(name)
            old = self._entries.pop(_state_key(name), _LocalEntry()).state
            return None if old is CircuitState.CLOSED else (old, CircuitState.CLOSED)

    def names(self) -> set[str]:
        with self._lock:
            return set(self._names.get(_names_key(), set()))


def uses_redis() -> bool:
    return bool(settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache")


def current_storage() -> BreakerStorage:
    """The storage matching today's cache settings (read on every call: tests swap them).

    Raises RedisError when the Redis client cannot be built.
    """
    if uses_redis():
        return RedisBreakerStorage()
    return LocalBreakerStorage()
