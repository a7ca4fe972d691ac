"""Health probes on the real services, and with a dependency refused or hung."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.test import Client

from tests.ecommerce.helpers import problem, redis_cache_at

# Time the view may take beyond the deadline: thread hand-off and JSON, on a busy CI box.
MARGIN_SECONDS = 0.5
EMBEDDED_BROKER = "embedded: tasks run in-process"


def get_timed(client: Client, path: str) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def assert_up(check: dict[str, Any], **extra: Any) -> None:
    assert set(check) == {"status", "latency_ms", *extra}
    assert check["status"] == "up"
    assert isinstance(check["latency_ms"], float)
    assert check["latency_ms"] >= 0
    for key, value in extra.items():
        assert check[key] == value


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/health/"])
def test_health_is_200_with_each_dependency_up(client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"status", "checks"}
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert_up(body["checks"]["database"])
    assert_up(body["checks"]["cache"])
    assert_up(body["checks"]["broker"], note=EMBEDDED_BROKER)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/health/"])
def test_health_with_redis_refusing_is_503_naming_the_cache(
    client: Client, settings: Any, closed_port: int, path: str
) -> None:
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)

    response, elapsed = get_timed(client, path)

    body = problem(response, 503)
    checks = body.pop("checks")
    assert body == {
        "type": "urn:ecommerce:problem:unhealthy",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Unavailable: cache.",
        "code": "unhealthy",
        "instance": path,
        "request_id": response["X-Request-ID"],
    }
    assert set(checks["cache"]) == {"status", "error"}
    assert checks["cache"]["status"] == "down"
    assert re.fullmatch(
        rf"ConnectionError: Error \d+ connecting to 127\.0\.0\.1:{closed_port}\. "
        r"Connection refused\.",
        checks["cache"]["error"],
    )
    assert_up(checks["database"])
    assert_up(checks["broker"], note=EMBEDDED_BROKER)
    assert elapsed < settings.HEALTH_CHECK_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert response["Retry-After"] == "5"  # DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS


@pytest.mark.slow
@pytest.mark.django_db
def test_health_with_redis_hung_answers_within_the_timeout(
    client: Client, settings: Any, silent_port: int
) -> None:
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    # The client would wait 5 s for a reply; the probe's deadline must cut it short.
    settings.CACHES = redis_cache_at(silent_port, timeout_seconds=5)

    response, elapsed = get_timed(client, "/health")

    body = problem(response, 503)
    assert body["detail"] == "Unavailable: cache."
    assert body["checks"]["cache"] == {"status": "down", "error": "no answer within 0.5s"}
    assert_up(body["checks"]["database"])
    assert 0.5 <= elapsed < 0.5 + MARGIN_SECONDS


@pytest.mark.django_db
def test_broker_check_is_up_on_a_real_broker(client: Client, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    response = client.get("/health")

    assert response.status_code == 200
    assert_up(json.loads(response.content)["checks"]["broker"])


@pytest.mark.slow
@pytest.mark.django_db
def test_broker_check_is_down_when_the_broker_refuses(
    client: Client, settings: Any, closed_port: int
) -> None:
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/15"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    response, elapsed = get_timed(client, "/health")

    body = problem(response, 503)
    assert body["detail"] == "Unavailable: broker."
    assert set(body["checks"]["broker"]) == {"status", "error"}
    assert body["checks"]["broker"]["status"] == "down"
    assert_up(body["checks"]["cache"])
    assert elapsed < 0.5 + MARGIN_SECONDS


@pytest.mark.slow
@pytest.mark.django_db
def test_broker_check_is_down_when_the_broker_hangs(
    client: Client, settings: Any, silent_port: int
) -> None:
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/15"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    response, elapsed = get_timed(client, "/health")

    body = problem(response, 503)
    assert body["detail"] == "Unavailable: broker."
    assert body["checks"]["broker"] == {"status": "down", "error": "no answer within 0.5s"}
    assert elapsed < 0.5 + MARGIN_SECONDS


@pytest.mark.parametrize("path", ["/health/live", "/health/live/"])
def test_live_answers_without_consulting_any_dependency(
    client: Client, settings: Any, closed_port: int, path: str
) -> None:
    # No database access allowed (no django_db mark), cache and broker unreachable.
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/15"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health/ready", "/health/ready/"])
def test_ready_is_200_when_dependencies_are_up(client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert [check["status"] for check in body["checks"].values()] == ["up", "up", "up"]


@pytest.mark.django_db
def test_ready_is_503_when_a_required_dependency_is_down(
    client: Client, settings: Any, closed_port: int
) -> None:
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)
    settings.HEALTH_READY_REQUIRES = ["database", "cache"]

    response = client.get("/health/ready")

    body = problem(response, 503)
    assert body["code"] == "unhealthy"
    assert body["detail"] == "Unavailable: cache."


@pytest.mark.django_db
def test_ready_stays_200_but_degraded_when_only_redis_is_down(
    client: Client, settings: Any, closed_port: int
) -> None:
    """By default only the database is required: reads fall back, orders wait in the outbox."""
    settings.CACHES = redis_cache_at(closed_port, timeout_seconds=0.25)

    ready = client.get("/health/ready")
    health = client.get("/health")

    assert ready.status_code == 200
    body = json.loads(ready.content)
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"
    assert health.status_code == 503


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health/ready", "/health/ready/"])
@pytest.mark.usefixtures("shutting_down")
def test_ready_is_503_once_shutting_down(client: Client, path: str, settings: Any) -> None:
    settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 3

    response = client.get(path)

    assert response["Retry-After"] == "3"

    assert problem(response, 503) == {
        "type": "urn:ecommerce:problem:shutting-down",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The process is shutting down.",
        "code": "shutting_down",
        "instance": path,
        "request_id": response["X-Request-ID"],
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("shutting_down")
def test_shutting_down_fails_only_readiness(client: Client) -> None:
    assert client.get("/health/live").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/health/ready").status_code == 503
