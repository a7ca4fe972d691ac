"""Typed refusals of the resilience helpers: an open circuit and a busy lock."""

from __future__ import annotations

from ecommerce.errors import Conflict, Unavailable


class CircuitOpen(Unavailable):
    """The circuit breaker for a dependency is open: the call was refused without trying.

    `retry_after_seconds` is when the breaker will next let a trial call through (or,
    while a trial is running, when that trial's slot expires at the latest).
    """

    code = "circuit_open"
    title = "Dependency temporarily unavailable"

    def __init__(self, *, name: str, retry_after_seconds: float) -> None:
        self.name = name
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            f"The circuit breaker {name!r} is open; retry in {retry_after_seconds:.3f}s.",
            name=name,
            retry_after_seconds=retry_after_seconds,
        )


class LockNotAcquired(Conflict):
    """Another holder owns the lock and did not release it within the blocking timeout."""

    code = "lock_busy"
    title = "Resource busy"

    def __init__(self, *, name: str, waited_seconds: float) -> None:
        self.name = name
        self.waited_seconds = waited_seconds
        super().__init__(
            f"The lock {name!r} is held by another owner (waited {waited_seconds:.3f}s).",
            name=name,
            waited_seconds=waited_seconds,
        )
