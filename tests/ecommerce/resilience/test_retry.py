"""Backoff with full jitter: bounds, cap, determinism with a seeded generator; the policy."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ecommerce.resilience.retry import RetryPolicy, backoff_seconds, payment_retry_policy


@pytest.mark.parametrize("attempt", range(12))
def test_full_jitter_stays_within_zero_and_the_capped_exponential(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(300.0, 2.0 * 2**attempt)

    delays = [
        backoff_seconds(attempt, base_seconds=2.0, cap_seconds=300.0, rng=rng) for _ in range(500)
    ]

    assert all(0.0 <= delay <= ceiling for delay in delays)
    # Full jitter uses the whole window, not only its top (that would be "equal jitter").
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


def test_the_same_seed_gives_the_same_delays() -> None:
    first = [
        backoff_seconds(n, base_seconds=2, cap_seconds=300, rng=random.Random(7)) for n in range(8)
    ]
    second = [
        backoff_seconds(n, base_seconds=2, cap_seconds=300, rng=random.Random(7)) for n in range(8)
    ]

    assert first == second
    assert first[3] == random.Random(7).uniform(0.0, 16.0)


@pytest.mark.parametrize("attempt", [8, 9, 50, 10_000])
def test_the_cap_bounds_every_late_attempt(attempt: int) -> None:
    rng = random.Random(1)

    delays = [
        backoff_seconds(attempt, base_seconds=2.0, cap_seconds=300.0, rng=rng) for _ in range(500)
    ]

    assert all(0.0 <= delay <= 300.0 for delay in delays)
    assert max(delays) > 290.0


def test_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_seconds(-1, base_seconds=2, cap_seconds=300)
    with pytest.raises(ValueError, match="base and cap"):
        backoff_seconds(0, base_seconds=-2, cap_seconds=300)


def test_policy_is_exhausted_once_max_attempts_were_made() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1.0, cap_seconds=3.0)

    assert [policy.exhausted(made) for made in range(1, 5)] == [False, False, True, True]


def test_policy_countdown_is_the_backoff_after_that_many_retries() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1.0, cap_seconds=3.0)

    assert policy.countdown(0, rng=random.Random(3)) == random.Random(3).uniform(0.0, 1.0)
    assert policy.countdown(1, rng=random.Random(3)) == random.Random(3).uniform(0.0, 2.0)
    assert policy.countdown(5, rng=random.Random(3)) == random.Random(3).uniform(0.0, 3.0)


def test_payment_policy_comes_from_settings(settings: Any) -> None:
    assert payment_retry_policy() == RetryPolicy(
        max_attempts=8, base_seconds=2.0, cap_seconds=300.0
    )

    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 3
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.5
    settings.PAYMENT_RETRY_CAP_SECONDS = 10.0

    assert payment_retry_policy() == RetryPolicy(max_attempts=3, base_seconds=0.5, cap_seconds=10.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_attempts": 2.5}, "max_attempts must be an integer"),
        ({"base_seconds": 0}, "base_seconds must be positive"),
        ({"cap_seconds": 1.0}, r"cap_seconds \(1.0\) must be >= base_seconds \(2.0\)"),
    ],
)
def test_policy_refuses_nonsense(fields: dict[str, Any], message: str) -> None:
    values = {"max_attempts": 8, "base_seconds": 2.0, "cap_seconds": 300.0, **fields}

    with pytest.raises(ValueError, match=message):
        RetryPolicy(**values)
