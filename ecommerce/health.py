"""Health endpoints: `/health` (each dependency), `/health/live` and `/health/ready`.

Checks run in a small thread pool with one overall deadline, so a hung dependency costs a
probe at most HEALTH_CHECK_TIMEOUT_SECONDS, never a hung worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe
from kombu import Connection

from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body
from ecommerce.resilience.breaker import registered as registered_breakers

_shutting_down = threading.Event()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def mark_shutting_down() -> None:
    """Make readiness fail at once (called on SIGTERM) while in-flight requests finish."""
    _shutting_down.set()


def is_shutting_down() -> bool:
    return _shutting_down.is_set()


def check_database() -> str | None:
    # Runs in a pool thread, which has its own connection: close it every time, so probes
    # never hold idle connections (or a broken one) between calls.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
    return None


def check_cache() -> str | None:
    key = "health:probe"
    cache.set(key, "ok", timeout=10)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return the value just written")
    return None


def check_broker() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "embedded: tasks run in-process"
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")
        return _executor


def _timed(check: Callable[[], str | None]) -> tuple[str | None, float]:
    started = time.perf_counter()
    note = check()
    return note, (time.perf_counter() - started) * 1000


def run_checks() -> dict[str, dict[str, Any]]:
    """Run every check concurrently; one that does not answer in time counts as down."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    futures: dict[str, Future[tuple[str | None, float]]] = {
        name: _pool().submit(_timed, check) for name, check in CHECKS.items()
    }
    wait(futures.values(), timeout=timeout)
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"status": "down", "error": f"no answer within {timeout:g}s"}
            continue
        exc = future.exception()
        if exc is not None:
            results[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:200]}
            continue
        note, latency_ms = future.result()
        results[name] = {"status": "up", "latency_ms": round(latency_ms, 2)}
        if note:
            results[name]["note"] = note
    return results


def breaker_states() -> dict[str, str]:
    """Each known circuit breaker's state by name (shared state, read from Redis)."""
    return {snapshot.name: snapshot.state.value for snapshot in registered_breakers()}


def _breakers_member(future: Future[dict[str, str]], deadline: float) -> dict[str, Any]:
    # An open breaker is a degraded dependency: reported, never a 503. Left out when no
    # breaker is known yet, or when Redis did not answer (the cache check says so).
    wait([future], timeout=max(0.0, deadline - time.monotonic()))
    if not future.done() or future.exception() is not None or not future.result():
        return {}
    return {"circuit_breakers": future.result()}


def _report(request: HttpRequest, *, required: Collection[str] | None = None) -> JsonResponse:
    """503 when a `required` check (all of them by default) is down; others degrade."""
    deadline = time.monotonic() + settings.HEALTH_CHECK_TIMEOUT_SECONDS
    breakers = _pool().submit(breaker_states)
    checks = run_checks()
    breakers_member = _breakers_member(breakers, deadline)
    failing = [name for name, result in checks.items() if result["status"] != "up"]
    down = [name for name in failing if required is None or name in required]
    if not down:
        status = "degraded" if failing else "ok"
        return JsonResponse({"status": status, "checks": checks, **breakers_member})
    body = problem_body(
        request,
        503,
        code="unhealthy",
        title="Service Unavailable",
        detail="Unavailable: " + ", ".join(down) + ".",
        extra={"checks": checks, **breakers_member},
    )
    return _unavailable(body)


def _unavailable(body: dict[str, Any]) -> JsonResponse:
    """A 503 problem+json that says, like every 503 here, when to ask again."""
    response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Overall status with each dependency and its latency; 503 when any is down."""
    return _report(request)


@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """The process answers; no dependency is consulted."""
    return JsonResponse({"status": "ok"})


# The longest /health/slow may sleep: well under any gunicorn timeout a test sets.
SLOW_MAX_SECONDS = 30.0


@require_safe
def slow(request: HttpRequest) -> JsonResponse:
    """Answer 200 after sleeping `seconds` (0 to 30): an in-flight request for shutdown tests.

    Routed only when TEST_SLOW_ENDPOINT_ENABLED is on.
    """
    try:
        seconds = float(request.GET.get("seconds", "1"))
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= SLOW_MAX_SECONDS:
        body = problem_body(
            request, 400, detail=f"seconds must be a number from 0 to {SLOW_MAX_SECONDS:g}."
        )
        return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    time.sleep(seconds)
    return JsonResponse({"status": "ok", "slept_seconds": seconds})


@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """The dependencies it cannot work without are up and it is not shutting down.

    HEALTH_READY_REQUIRES names them (the database by default): with Redis down, reads
    fall back to the database and orders wait in the outbox, so taking every pod out of
    the load balancer would turn a degraded shop into a closed one.
    """
    if is_shutting_down():
        body = problem_body(
            request, 503, code="shutting_down", detail="The process is shutting down."
        )
        return _unavailable(body)
    return _report(request, required=settings.HEALTH_READY_REQUIRES)
