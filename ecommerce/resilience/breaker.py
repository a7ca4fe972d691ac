"""Circuit breakers around calls to dependencies, with state shared by every process.

    with breaker("payment-provider").guard(transient=(ProviderUnavailable,)):
        result = gateway.charge(...)

Policy (thresholds, from settings) is apart from state (in `breaker_storage`, on Redis or,
embedded, in this process). Closed: calls go through; `failure_threshold` consecutive
transient failures open it. Open: calls are refused with `CircuitOpen` without being made.
After `recovery_timeout_seconds` the next caller moves it to half_open and becomes the one
trial call, across all processes; everyone else is still refused. The trial's success
closes it; its transient failure re-opens it with a fresh opened_at. A trial that never
reports back (its process died) holds its slot only for `trial_timeout_seconds`, after
which the next caller becomes the trial.

Only exceptions in `transient` are failures. Any other exception means the dependency
answered (a card decline, a refusal of the request): it counts as a success of the call
and propagates. BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit)
decide nothing: a trial interrupted that way just gives its slot back.

When Redis itself fails while the breaker is consulted, the call goes ahead (fail open)
and a warning is logged. The breaker protects the dependency and our workers from a
dependency that is down; it is not a guarantee of anything. Refusing all work because
the breaker's own store is unreachable would turn a Redis outage into a payment outage,
while the real guarantees (row locks, the provider's idempotency key) hold without it.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import CIRCUIT_BREAKER_TRANSITIONS
from ecommerce.resilience.breaker_storage import (
    Admission,
    BreakerStorage,
    CircuitState,
    Transition,
    current_storage,
)
from ecommerce.resilience.exceptions import CircuitOpen

logger = get_logger(__name__)

T = TypeVar("T")

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
GAUGE_VALUE: dict[CircuitState, int] = {
    CircuitState.CLOSED: 0,
    CircuitState.HALF_OPEN: 1,
    CircuitState.OPEN: 2,
}
POLICY_FIELDS = frozenset(
    {"failure_threshold", "recovery_timeout_seconds", "trial_timeout_seconds"}
)


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open.

    Raises ValueError on a threshold below 1 or a timeout that is not positive.
    """

    failure_threshold: int
    recovery_timeout_seconds: float
    # Longer than the slowest guarded call may take, or a slow trial loses its slot.
    trial_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.failure_threshold, bool) or not isinstance(self.failure_threshold, int):
            raise ValueError(
                f"failure_threshold must be an integer, not {self.failure_threshold!r}"
            )
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {self.failure_threshold}")
        for field in ("recovery_timeout_seconds", "trial_timeout_seconds"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{field} must be a positive number of seconds, not {value!r}")


@dataclass(frozen=True)
class BreakerSnapshot:
    """A breaker's state as read at one moment; `opened_at` is None unless open or half_open."""

    name: str
    state: CircuitState
    failures: int
    opened_at: datetime | None


def validate_name(name: str) -> None:
    """Raises ValueError unless `name` is a short identifier (it becomes a key and a label)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"A circuit breaker name is 1-100 letters, digits or '._:-', not {name!r}."
        )


def _default_values() -> dict[str, Any]:
    return {
        "failure_threshold": settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD,
        "recovery_timeout_seconds": settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS,
        "trial_timeout_seconds": settings.CIRCUIT_BREAKER_TRIAL_TIMEOUT_SECONDS,
    }


def default_policy() -> BreakerPolicy:
    """The policy of a breaker without overrides, from the CIRCUIT_BREAKER_* settings.

    Raises ValueError on an invalid value.
    """
    return BreakerPolicy(**_default_values())


def policy_for(name: str) -> BreakerPolicy:
    """The policy from settings: the CIRCUIT_BREAKER_* defaults, then CIRCUIT_BREAKERS[name].

    Raises ValueError on an unknown override key or an invalid value.
    """
    configured = settings.CIRCUIT_BREAKERS
    if not isinstance(configured, dict):
        raise ValueError(f"CIRCUIT_BREAKERS must be a dict, not {configured!r}")
    overrides = configured.get(name, {})
    if not isinstance(overrides, dict):
        raise ValueError(f"CIRCUIT_BREAKERS[{name!r}] must be a dict, not {overrides!r}")
    unknown = set(overrides) - POLICY_FIELDS
    if unknown:
        raise ValueError(
            f"CIRCUIT_BREAKERS[{name!r}] has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(POLICY_FIELDS)}"
        )
    try:
        return BreakerPolicy(**{**_default_values(), **overrides})
    except ValueError as exc:
        if not overrides:
            raise
        raise ValueError(f"CIRCUIT_BREAKERS[{name!r}]: {exc}") from None


@dataclass(frozen=True)
class _Permit:
    """What admission granted: a trial token, or `degraded` when the store was unreachable."""

    trial_token: str | None = None
    degraded: bool = False


class CircuitBreaker:
    """One named breaker. Holds no state itself: every method consults the storage.

    With `policy=None` the policy is read from settings at each call, so settings changed
    at runtime (and in tests) apply at once.
    """

    def __init__(self, name: str, *, policy: BreakerPolicy | None = None) -> None:
        validate_name(name)
        self.name = name
        self._policy = policy

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r}>"

    @property
    def policy(self) -> BreakerPolicy:
        return self._policy or policy_for(self.name)

    @contextmanager
    def guard(self, *, transient: tuple[type[BaseException], ...]) -> Iterator[None]:
        """Run the block if the breaker allows it and record how it went.

        Raises CircuitOpen (without running the block) while open, or while half_open
        with another caller's trial in flight. Exceptions from the block propagate.
        """
        permit = self._admit()
        try:
            yield
        except transient:
            self._record(permit, failed=True)
            raise
        except Exception:
            self._record(permit, failed=False)
            raise
        except BaseException:
            self._abandon(permit)
            raise
        self._record(permit, failed=False)

    def call(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        transient: tuple[type[BaseException], ...],
        **kwargs: Any,
    ) -> T:
        """`fn(*args, **kwargs)` under `guard(transient=...)`; returns its result.

        Raises CircuitOpen without calling `fn` when the breaker refuses.
        """
        with self.guard(transient=transient):
            return fn(*args, **kwargs)

    def state(self) -> BreakerSnapshot:
        """Read the shared state.

        Raises RedisError when Redis is unreachable.
        """
        stored = current_storage().read(self.name)
        opened_at = (
            datetime.fromtimestamp(stored.opened_at_ms / 1000, tz=UTC)
            if stored.opened_at_ms is not None and stored.state is not CircuitState.CLOSED
            else None
        )
        return BreakerSnapshot(
            name=self.name, state=stored.state, failures=stored.failures, opened_at=opened_at
        )

    def reset(self) -> BreakerSnapshot:
        """Close the breaker and forget its failures and any trial in flight.

        Raises RedisError when Redis is unreachable.
        """
        self._transitioned(current_storage().reset(self.name))
        return self.state()

    def _admit(self) -> _Permit:
        policy = self.policy
        try:
            storage = current_storage()
            admission: Admission = storage.admit(
                self.name,
                recovery_ms=_ms(policy.recovery_timeout_seconds),
                trial_ttl_ms=_ms(policy.trial_timeout_seconds),
                token=uuid.uuid4().hex,
            )
        except RedisError as exc:
            self._store_failed("admit", exc)
            return _Permit(degraded=True)
        self._transitioned(admission.transition)
        if not admission.allowed:
            raise CircuitOpen(
                name=self.name, retry_after_seconds=round(admission.retry_after_ms / 1000, 3)
            )
        return _Permit(trial_token=admission.trial_token)

    def _record(self, permit: _Permit, *, failed: bool) -> None:
        if permit.degraded:
            return  # the store failed moments ago; one timeout per call is enough
        try:
            storage: BreakerStorage = current_storage()
            if failed:
                transition = storage.record_failure(
                    self.name,
                    trial_token=permit.trial_token,
                    threshold=self.policy.failure_threshold,
                )
            else:
                transition = storage.record_success(self.name, trial_token=permit.trial_token)
        except RedisError as exc:
            # A trial slot left behind expires on its own (trial_timeout_seconds).
            self._store_failed("record", exc)
            return
        self._transitioned(transition)

    def _abandon(self, permit: _Permit) -> None:
        if permit.trial_token is None:
            return
        try:
            current_storage().release_trial(self.name, trial_token=permit.trial_token)
        except RedisError as exc:
            self._store_failed("release_trial", exc)

    def _transitioned(self, transition: Transition | None) -> None:
        if transition is None:
            return
        from_state, to_state = transition
        CIRCUIT_BREAKER_TRANSITIONS.labels(self.name, from_state.value, to_state.value).inc()
        log = logger.warning if to_state is CircuitState.OPEN else logger.info
        log(
            "circuit_breaker_transition",
            name=self.name,
            **{"from": from_state.value, "to": to_state.value},
        )

    def _store_failed(self, step: str, exc: BaseException) -> None:
        logger.warning(
            "circuit_breaker_store_unavailable",
            name=self.name,
            step=step,
            error=f"{type(exc).__name__}: {exc}"[:200],
            fail_open=True,
        )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker(name: str) -> CircuitBreaker:
    """The process-wide breaker called `name` (created on first use, policy from settings).

    Raises ValueError on an invalid name.
    """
    with _breakers_lock:
        found = _breakers.get(name)
        if found is None:
            found = _breakers[name] = CircuitBreaker(name)
        return found


def registered() -> list[BreakerSnapshot]:
    """Every known breaker's state, by name: configured in CIRCUIT_BREAKERS or ever used.

    Raises RedisError when Redis is unreachable.
    """
    names = set(settings.CIRCUIT_BREAKERS) | current_storage().names()
    return [breaker(name).state() for name in sorted(names)]


class BreakerStateCollector:
    """`ecommerce_circuit_breaker_state`, read from the shared store when /metrics is scraped.

    A gauge each process set on the transitions it saw went stale as soon as another
    process (a reset from the command line, a trial in another worker) changed the state:
    the web and every worker would keep exporting "open" after a reset, and the alert would
    not clear when the runbook says it does. Read at scrape time, every exporter shows the
    state every process acts on. When the store cannot be read the metric is left out (a
    missing series, not a wrong one); `ecommerce_dependency_up` reports the store.
    """

    def __init__(self, read: Callable[[], Iterable[BreakerSnapshot]] | None = None) -> None:
        self._read = read or registered

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no samples when registered: the store is read only at collect

    def collect(self) -> Iterator[Metric]:
        try:
            snapshots = list(self._read())
        except RedisError as exc:
            logger.warning("metrics_breaker_state_unavailable", error=type(exc).__name__)
            return
        gauge = GaugeMetricFamily(
            "ecommerce_circuit_breaker_state",
            "Circuit breaker state by breaker name: 0 closed, 1 half_open, 2 open"
            " (read from the shared store at scrape time).",
            labels=["name"],
        )
        for snapshot in snapshots:
            gauge.add_metric([snapshot.name], float(GAUGE_VALUE[snapshot.state]))
        yield gauge


__all__ = [
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerStateCollector",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "breaker",
    "default_policy",
    "policy_for",
    "registered",
]
