"""The circuit breaker on real Redis (and embedded): thresholds, refusals, one half-open
trial across threads and processes, crash-safe trials, logs, metrics, /health, checks."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import checks
from django.test import Client
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from ecommerce.errors import Unavailable
from ecommerce.observability.exposition import registry_for_scrape, worker_registry
from ecommerce.resilience.breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerStateCollector,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    breaker,
    policy_for,
    registered,
)
from ecommerce.resilience.checks import check_resilience_settings
from tests.ecommerce.helpers import LogLines, redis_cache_at
from tests.ecommerce.resilience.helpers import (
    TRANSIENT,
    CardDeclined,
    ProviderDown,
    fail,
    run_child,
    succeed,
)

RECOVERY_SECONDS = 0.2
# Sleeping this much longer than a timeout makes it certainly over, even on a busy box.
SLACK_SECONDS = 0.05

# Runs a guarded call in a separate process and prints what happened to it.
TRY_CALL = """
import sys, django
django.setup()
from ecommerce.resilience.breaker import CircuitOpen, breaker
try:
    with breaker(sys.argv[1]).guard(transient=(OSError,)):
        print("called")
except CircuitOpen as exc:
    print(f"refused {exc.retry_after_seconds}")
"""
# Takes the half-open trial and dies without reporting back, as a killed worker would.
CRASH_DURING_TRIAL = """
import os, sys, django
django.setup()
from ecommerce.resilience.breaker import breaker
with breaker(sys.argv[1]).guard(transient=(OSError,)):
    print("trial", flush=True)
    os._exit(0)
"""


def configure(settings: Any, name: str, **policy: Any) -> CircuitBreaker:
    """Give breaker `name` a policy through the CIRCUIT_BREAKERS setting; return it."""
    settings.CIRCUIT_BREAKERS = {name: policy}
    return breaker(name)


def opened(settings: Any, name: str, **policy: Any) -> CircuitBreaker:
    """A breaker with threshold 3 and a short recovery, opened by three transient failures."""
    found = configure(
        settings,
        name,
        failure_threshold=3,
        recovery_timeout_seconds=policy.pop("recovery_timeout_seconds", RECOVERY_SECONDS),
        **policy,
    )
    fail(found, 3)
    assert found.state().state is CircuitState.OPEN
    return found


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def transitions(name: str, from_state: str, to_state: str) -> float:
    return sample(
        "ecommerce_circuit_breaker_transitions_total",
        name=name,
        from_state=from_state,
        to_state=to_state,
    )


def gauge(name: str) -> float | None:
    """The state this process's /metrics would export now (read from the shared store)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BreakerStateCollector())
    return registry.get_sample_value("ecommerce_circuit_breaker_state", {"name": name})


def exported(registry: CollectorRegistry, name: str) -> list[str]:
    """The breaker state lines of `name` in the text a scrape of `registry` returns."""
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("ecommerce_circuit_breaker_state") and f'name="{name}"' in line
    ]


@pytest.mark.usefixtures("storage")
def test_threshold_consecutive_transient_failures_open_the_breaker(
    settings: Any, name: str
) -> None:
    found = configure(settings, name, failure_threshold=3)

    fail(found, 2)
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 2, None)
    before = datetime.now(tz=UTC)
    fail(found, 1)

    snapshot = found.state()
    assert snapshot.state is CircuitState.OPEN
    assert snapshot.failures == 3
    assert snapshot.opened_at is not None
    assert before - timedelta(seconds=1) <= snapshot.opened_at <= datetime.now(tz=UTC)


@pytest.mark.usefixtures("storage")
def test_declines_and_other_errors_are_successes_of_the_call(settings: Any, name: str) -> None:
    found = configure(settings, name, failure_threshold=3)
    fail(found, 2)

    with pytest.raises(CardDeclined), found.guard(transient=TRANSIENT):
        raise CardDeclined
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)

    for _ in range(10):  # far past the threshold, none of them counts
        with pytest.raises(CardDeclined):
            found.call(_raise, CardDeclined(), transient=TRANSIENT)
        assert found.call(lambda: "declined", transient=TRANSIENT) == "declined"
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)


@pytest.mark.usefixtures("storage")
def test_a_success_resets_the_consecutive_failure_count(settings: Any, name: str) -> None:
    found = configure(settings, name, failure_threshold=3)

    fail(found, 2)
    assert succeed(found) == "ok"
    fail(found, 2)

    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 2, None)


@pytest.mark.usefixtures("storage")
def test_open_breaker_refuses_without_calling(settings: Any, name: str) -> None:
    found = opened(settings, name, recovery_timeout_seconds=30)
    before = found.state()
    calls: list[int] = []

    with pytest.raises(CircuitOpen) as refused:
        found.call(calls.append, 1, transient=TRANSIENT)

    assert calls == []
    assert isinstance(refused.value, Unavailable)
    assert refused.value.code == "circuit_open"
    assert refused.value.name == name
    assert 29 < refused.value.retry_after_seconds <= 30
    assert refused.value.extra == {
        "name": name,
        "retry_after_seconds": refused.value.retry_after_seconds,
    }
    assert found.state() == before


@pytest.mark.usefixtures("storage")
def test_after_recovery_exactly_one_of_twenty_threads_gets_the_trial(
    settings: Any, name: str
) -> None:
    found = opened(settings, name)
    time.sleep(RECOVERY_SECONDS + SLACK_SECONDS)
    start = threading.Barrier(20)
    finish_trial = threading.Event()

    def attempt() -> str:
        start.wait()
        try:
            with found.guard(transient=TRANSIENT):
                finish_trial.wait(timeout=10)
                return "trial"
        except CircuitOpen:
            return "refused"

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(attempt) for _ in range(20)]
        deadline = time.monotonic() + 10
        while sum(f.done() for f in futures) < 19 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The trial is still running: everyone else was refused meanwhile.
        assert sorted(f.result() for f in futures if f.done()) == ["refused"] * 19
        assert found.state().state is CircuitState.HALF_OPEN
        finish_trial.set()
        outcomes = sorted(f.result() for f in futures)

    assert outcomes == ["refused"] * 19 + ["trial"]
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)


@pytest.mark.usefixtures("storage")
def test_failed_trial_reopens_with_a_fresh_opened_at(settings: Any, name: str) -> None:
    found = opened(settings, name)
    first_opened_at = found.state().opened_at
    assert first_opened_at is not None
    time.sleep(RECOVERY_SECONDS + SLACK_SECONDS)

    fail(found, 1)  # the trial

    snapshot = found.state()
    assert snapshot.state is CircuitState.OPEN
    assert snapshot.failures == 4
    assert snapshot.opened_at is not None
    assert snapshot.opened_at >= first_opened_at + timedelta(seconds=RECOVERY_SECONDS)
    with pytest.raises(CircuitOpen):
        succeed(found)


@pytest.mark.usefixtures("storage")
def test_a_trial_that_never_reports_back_gives_its_slot_up_after_the_trial_timeout(
    settings: Any, name: str
) -> None:
    found = opened(settings, name, trial_timeout_seconds=0.3)
    time.sleep(RECOVERY_SECONDS + SLACK_SECONDS)
    stuck = found.guard(transient=TRANSIENT)
    stuck.__enter__()  # the trial starts and is never heard of again

    with pytest.raises(CircuitOpen) as refused:
        succeed(found)
    assert 0 < refused.value.retry_after_seconds <= 0.3
    time.sleep(0.3 + SLACK_SECONDS)

    assert succeed(found) == "ok"  # the next caller became the trial and closed it
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)
    stuck.__exit__(None, None, None)  # a late report from the lost trial changes nothing
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)


@pytest.mark.slow
def test_another_process_sees_the_breaker_opened_here(settings: Any, name: str) -> None:
    found = opened(settings, name, recovery_timeout_seconds=30)

    child = run_child(["-c", TRY_CALL, name])

    assert child.returncode == 0, child.stderr
    verdict, retry_after = child.stdout.split()
    assert verdict == "refused"
    assert 0 < float(retry_after) <= 30
    assert found.state().state is CircuitState.OPEN


# Resets the named breaker from another process, as `manage.py reset_circuit_breaker` does.
RESET_ELSEWHERE = """
import sys, django
django.setup()
from ecommerce.resilience.breaker import breaker
print(breaker(sys.argv[1]).reset().state)
"""


@pytest.mark.slow
@pytest.mark.django_db
def test_metrics_of_web_and_worker_follow_a_reset_done_by_another_process(
    settings: Any, name: str
) -> None:
    # given: opened here, so this process saw (and once recorded) the transition to open
    opened(settings, name, recovery_timeout_seconds=30)
    line = f'ecommerce_circuit_breaker_state{{name="{name}"}}'
    assert exported(registry_for_scrape(), name) == [f"{line} 2.0"]
    assert exported(worker_registry(), name) == [f"{line} 2.0"]

    # when
    child = run_child(["-c", RESET_ELSEWHERE, name])

    # then: the next scrape of either says closed, without this process seeing a transition
    assert (child.returncode, child.stdout.strip()) == (0, "closed"), child.stderr
    assert exported(registry_for_scrape(), name) == [f"{line} 0.0"]
    assert exported(worker_registry(), name) == [f"{line} 0.0"]


def test_breaker_state_is_left_out_not_wrong_when_redis_is_unreachable(
    settings: Any, closed_port: int, log_lines: LogLines
) -> None:
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)

    assert gauge("payment-provider") is None
    assert [
        line["error"]
        for line in log_lines()
        if line["event"] == "metrics_breaker_state_unavailable"
    ] == ["ConnectionError"]


@pytest.mark.slow
def test_a_trial_process_that_dies_holds_the_slot_only_until_it_expires(
    settings: Any, name: str
) -> None:
    found = opened(settings, name, trial_timeout_seconds=2)
    time.sleep(RECOVERY_SECONDS + SLACK_SECONDS)

    child = run_child(["-c", CRASH_DURING_TRIAL, name])
    died_at = time.monotonic()

    assert (child.returncode, child.stdout) == (0, "trial\n")
    assert found.state().state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        succeed(found)
    time.sleep(max(0.0, died_at + 2 + SLACK_SECONDS - time.monotonic()))
    assert succeed(found) == "ok"
    assert found.state() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)


@pytest.mark.usefixtures("storage")
def test_each_transition_is_logged_and_counted(
    settings: Any, name: str, log_lines: LogLines
) -> None:
    found = configure(
        settings, name, failure_threshold=2, recovery_timeout_seconds=RECOVERY_SECONDS
    )

    fail(found, 2)
    assert gauge(name) == 2.0
    time.sleep(RECOVERY_SECONDS + SLACK_SECONDS)
    with found.guard(transient=TRANSIENT):
        assert gauge(name) == 1.0
    assert gauge(name) == 0.0

    logged = [
        (line["level"], line["from"], line["to"])
        for line in log_lines()
        if line["event"] == "circuit_breaker_transition" and line["name"] == name
    ]
    assert logged == [
        ("warning", "closed", "open"),
        ("info", "open", "half_open"),
        ("info", "half_open", "closed"),
    ]
    assert transitions(name, "closed", "open") == 1.0
    assert transitions(name, "open", "half_open") == 1.0
    assert transitions(name, "half_open", "closed") == 1.0
    assert transitions(name, "half_open", "open") == 0.0


def test_redis_failing_lets_the_call_through_with_a_warning(
    settings: Any, name: str, closed_port: int, log_lines: LogLines
) -> None:
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)
    found = breaker(name)

    assert succeed(found) == "ok"
    with pytest.raises(ProviderDown):
        fail_once(found)

    warnings = [
        (line["level"], line["step"], line["fail_open"])
        for line in log_lines()
        if line["event"] == "circuit_breaker_store_unavailable" and line["name"] == name
    ]
    assert warnings == [("warning", "admit", True), ("warning", "admit", True)]


@pytest.mark.usefixtures("storage")
def test_reset_closes_and_registered_lists_used_and_configured_breakers(
    settings: Any, name: str
) -> None:
    found = opened(settings, name, recovery_timeout_seconds=30)
    settings.CIRCUIT_BREAKERS = {**settings.CIRCUIT_BREAKERS, f"{name}-configured": {}}
    used_once = breaker(f"{name}-used")
    succeed(used_once)

    assert [(s.name, s.state, s.failures) for s in registered()] == [
        (name, CircuitState.OPEN, 3),
        (f"{name}-configured", CircuitState.CLOSED, 0),
        (f"{name}-used", CircuitState.CLOSED, 0),
    ]
    assert found.reset() == BreakerSnapshot(name, CircuitState.CLOSED, 0, None)
    assert succeed(found) == "ok"
    assert transitions(name, "open", "closed") == 1.0


def test_the_state_lives_under_this_test_workers_key_prefix(settings: Any, name: str) -> None:
    from django_redis import get_redis_connection

    found = opened(settings, name)

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = {key.decode() for key in get_redis_connection("default").keys(f"*{name}*")}
    assert keys == {f"{prefix}:1:circuit-breaker:{name}"}
    assert found.state().state is CircuitState.OPEN


@pytest.mark.django_db
def test_health_reports_an_open_breaker_and_stays_200(
    settings: Any, name: str, client: Client
) -> None:
    opened(settings, name, recovery_timeout_seconds=30)
    settings.CIRCUIT_BREAKERS = {**settings.CIRCUIT_BREAKERS, "payment-provider": {}}

    response = client.get("/health")

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert body["circuit_breakers"] == {name: "open", "payment-provider": "closed"}


def test_breaker_is_one_object_per_name_and_names_are_checked() -> None:
    assert breaker("payment-provider") is breaker("payment-provider")
    for bad in ("", "has space", "x" * 101, "émoji"):
        with pytest.raises(ValueError, match="circuit breaker name"):
            breaker(bad)


def test_policy_comes_from_defaults_then_per_name_overrides(settings: Any) -> None:
    settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD = 5
    settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS = 30.0
    settings.CIRCUIT_BREAKER_TRIAL_TIMEOUT_SECONDS = 30.0
    settings.CIRCUIT_BREAKERS = {"payment-provider": {"failure_threshold": 2}}

    assert policy_for("payment-provider") == BreakerPolicy(2, 30.0, 30.0)
    assert policy_for("smtp") == BreakerPolicy(5, 30.0, 30.0)
    assert CircuitBreaker("x", policy=BreakerPolicy(1, 1.0)).policy == BreakerPolicy(1, 1.0, 30.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be at least 1"),
        ({"failure_threshold": 2.5}, "failure_threshold must be an integer"),
        ({"recovery_timeout_seconds": 0}, "recovery_timeout_seconds must be a positive"),
        ({"trial_timeout_seconds": -1}, "trial_timeout_seconds must be a positive"),
    ],
)
def test_policy_refuses_nonsense(fields: dict[str, Any], message: str) -> None:
    values = {"failure_threshold": 5, "recovery_timeout_seconds": 30.0, **fields}

    with pytest.raises(ValueError, match=message):
        BreakerPolicy(**values)


def test_start_up_check_passes_on_the_defaults() -> None:
    assert check_resilience_settings() == []


def test_start_up_check_reports_each_bad_setting(settings: Any) -> None:
    settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD = 0
    settings.CIRCUIT_BREAKERS = {
        "payment-provider": {"recovery_timeout_seconds": "soon"},
        "smtp": {"retries": 3},
        "bad name": {},
    }
    settings.PAYMENT_RETRY_CAP_SECONDS = 1.0

    messages = {(m.id, m.msg) for m in check_resilience_settings()}

    assert {m.level for m in check_resilience_settings()} == {checks.ERROR}
    assert messages == {
        (
            "resilience.E001",
            "CIRCUIT_BREAKER_* settings: failure_threshold must be at least 1, not 0",
        ),
        (
            "resilience.E003",
            "CIRCUIT_BREAKERS['payment-provider']: failure_threshold must be at least 1, not 0",
        ),
        (
            "resilience.E003",
            "CIRCUIT_BREAKERS['smtp'] has unknown keys ['retries']; allowed: "
            "['failure_threshold', 'recovery_timeout_seconds', 'trial_timeout_seconds']",
        ),
        (
            "resilience.E003",
            "CIRCUIT_BREAKERS: A circuit breaker name is 1-100 letters, digits or '._:-', "
            "not 'bad name'.",
        ),
        (
            "resilience.E004",
            "PAYMENT_RETRY_* settings: cap_seconds (1.0) must be >= base_seconds (2.0)",
        ),
    }


def _raise(exc: BaseException) -> None:
    raise exc


def fail_once(found: CircuitBreaker) -> None:
    with found.guard(transient=TRANSIENT):
        raise ProviderDown
