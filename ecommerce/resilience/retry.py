"""Retry timing: capped exponential backoff with full jitter, the payment retry policy, and
which infrastructure errors are transient.

Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") spreads retries of
many tasks that failed together over the whole window instead of bunching them at its end,
so a provider coming back is not hit by a synchronised wave.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import kombu.exceptions
import redis.exceptions
from amqp.exceptions import RecoverableConnectionError as AmqpRecoverableConnectionError
from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError

# Errors that say a dependency (PostgreSQL, Redis, the broker) could not be reached or
# answered in time, not that the work is wrong: the same call succeeds once it is back.
# Django wraps the driver's errors in its own classes (psycopg's deadlock and
# serialization failures are OperationalError too, and retrying them is right); redis-py's
# TimeoutError is not a ConnectionError; kombu raises its OperationalError for any
# connection error of any transport, amqp its recoverable ones for RabbitMQ.
TRANSIENT_INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseOperationalError,
    DatabaseInterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    AmqpRecoverableConnectionError,
)

# 2**64 base units is already far above any cap: stop doubling there (no float overflow).
_MAX_EXPONENT = 64


class UniformSource(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def backoff_seconds(
    attempt: int, *, base_seconds: float, cap_seconds: float, rng: UniformSource = random
) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)].

    `attempt` counts retries already made (0 before the first retry), as Celery's
    `request.retries` does. Raises ValueError on a negative attempt, base or cap.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    if base_seconds < 0 or cap_seconds < 0:
        raise ValueError(f"base and cap must be >= 0, not {base_seconds} and {cap_seconds}")
    ceiling = min(cap_seconds, base_seconds * 2 ** min(attempt, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a transient failure is retried.

    `max_attempts` counts every attempt, the first included. Raises ValueError on
    max_attempts below 1, a base that is not positive, or a cap below the base.
    """

    max_attempts: int
    base_seconds: float
    cap_seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an integer, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not self.base_seconds > 0:
            raise ValueError(f"base_seconds must be positive, not {self.base_seconds!r}")
        if not self.cap_seconds >= self.base_seconds:
            raise ValueError(
                f"cap_seconds ({self.cap_seconds!r}) must be >= base_seconds "
                f"({self.base_seconds!r})"
            )

    def countdown(self, attempt: int, *, rng: UniformSource = random) -> float:
        """Seconds to wait before the next attempt, drawn with full jitter.

        `attempt` is the number of retries made already: Celery's `request.retries`, 0
        when the first attempt just failed.
        """
        return backoff_seconds(
            attempt, base_seconds=self.base_seconds, cap_seconds=self.cap_seconds, rng=rng
        )

    def exhausted(self, attempts_made: int) -> bool:
        """True once `attempts_made` attempts (the first included) reach max_attempts.

        In a Celery task that just failed: `exhausted(self.request.retries + 1)`.
        """
        return attempts_made >= self.max_attempts


def payment_retry_policy() -> RetryPolicy:
    """The policy for charging a payment, from the PAYMENT_RETRY_* settings.

    Raises ValueError when those settings are invalid (the start-up check reports it first).
    """
    return RetryPolicy(
        max_attempts=settings.PAYMENT_RETRY_MAX_ATTEMPTS,
        base_seconds=settings.PAYMENT_RETRY_BASE_SECONDS,
        cap_seconds=settings.PAYMENT_RETRY_CAP_SECONDS,
    )


__all__ = [
    "TRANSIENT_INFRASTRUCTURE_ERRORS",
    "RetryPolicy",
    "backoff_seconds",
    "payment_retry_policy",
]
