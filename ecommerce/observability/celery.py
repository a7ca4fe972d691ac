"""Celery's side of observability: task metrics, worker heartbeats, multiprocess files.

Connected once by `ecommerce.celery`. Every task run is counted by name and outcome and
timed. A live worker refreshes its heartbeat gauge every CELERY_HEARTBEAT_SECONDS, which
the "no worker" alert watches. With PROMETHEUS_MULTIPROC_DIR set, pool processes write
metric files there (the web merges them when it shares the directory root); with
CELERY_METRICS_PORT set, the worker also serves them itself (one scrape target per worker,
for hosts where the web cannot see the worker's files).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from celery import signals
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind

from ecommerce.observability.metrics import (
    CELERY_TASK_DURATION,
    CELERY_TASK_RUNS,
    CELERY_WORKER_HEARTBEAT,
)
from ecommerce.observability.tracing import keep_dropped, untraced_unless_sampled

_started: dict[str, float] = {}
# Tasks running with instrumentation suppressed (their trace was not sampled), by task id.
_untraced: dict[str, AbstractContextManager[None]] = {}
# Task ids whose publish the tracing instrumentation's hooks are tracing, until it is done.
_traced_publishes: set[str] = set()
_PUBLISH_UID = "ecommerce-untraced-publish"
HEARTBEAT_SECONDS = float(os.environ.get("CELERY_HEARTBEAT_SECONDS", "10"))


def _name(task: Any) -> str:
    return getattr(task, "name", None) or "unknown"


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _untraced_unless_sampled(task_id: str | None = None, **_: Any) -> None:
    """task_prerun, connected after the tracing instrumentation's own (so its span is the
    current one): a task whose trace was not sampled makes no SQL or Redis spans either
    (ecommerce.observability.tracing.untraced_unless_sampled); `_task_finished` ends it."""
    if not task_id:
        return
    scope = untraced_unless_sampled()
    scope.__enter__()
    _untraced[task_id] = scope


def connect_untraced_tasks() -> None:
    """Connect `_untraced_unless_sampled`; call after instrumenting Celery."""
    signals.task_prerun.connect(
        _untraced_unless_sampled, weak=False, dispatch_uid="ecommerce-untraced-tasks"
    )


def connect_untraced_publish(instrumentor: Any) -> None:
    """Put `instrumentor`'s publish hooks (OpenTelemetry's CeleryInstrumentor, instrumented)
    behind a check: inside a trace the sampler dropped, a publish only carries the trace
    context in the message's headers.

    The instrumentation would make a producer span that records nothing, switch the current
    context to it, and keep and look it up again by task id: 3.6% of an order's CPU (its
    two messages) in a profile of the web workers under load, for the nineteen traces in
    twenty nobody sees. A publish in a sampled trace, or outside any trace (the relay's
    re-sends, beat), is traced by the instrumentation as before. (A publish that raises
    leaves its task id in `_traced_publishes`, as the instrumentation leaves its context:
    Celery signals no failed publish.)
    """
    before, after = instrumentor._trace_before_publish, instrumentor._trace_after_publish
    signals.before_task_publish.disconnect(before)
    signals.after_task_publish.disconnect(after)

    def before_publish(*args: Any, **kwargs: Any) -> None:
        current = trace.get_current_span()
        headers = kwargs.get("headers")
        if current.get_span_context().is_valid and not current.is_recording():
            if headers:
                inject(headers)  # the dropped trace's id still travels to the task
            return
        task_id = headers.get("id") if headers else None
        if task_id:
            _traced_publishes.add(task_id)
        before(*args, **kwargs)

    def after_publish(*args: Any, **kwargs: Any) -> None:
        headers = kwargs.get("headers")
        task_id = headers.get("id") if headers else None
        if task_id in _traced_publishes:
            _traced_publishes.discard(task_id)
            after(*args, **kwargs)

    signals.before_task_publish.connect(before_publish, weak=False, dispatch_uid=_PUBLISH_UID)
    signals.after_task_publish.connect(after_publish, weak=False, dispatch_uid=_PUBLISH_UID)


def disconnect_untraced_publish() -> None:
    """Undo `connect_untraced_publish` (tests that instrument and uninstrument)."""
    signals.before_task_publish.disconnect(dispatch_uid=_PUBLISH_UID)
    signals.after_task_publish.disconnect(dispatch_uid=_PUBLISH_UID)
    _traced_publishes.clear()


@signals.task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    # First: the suppression entered after the task's span is left before the span is.
    scope = _untraced.pop(task_id or "", None)
    if scope is not None:
        scope.__exit__(None, None, None)
    started = _started.pop(task_id or "", None)
    elapsed = 0.0 if started is None else time.perf_counter() - started
    if started is not None:
        CELERY_TASK_DURATION.labels(_name(task)).observe(elapsed)
    outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
    CELERY_TASK_RUNS.labels(_name(task), outcome).inc()
    if outcome == "failure":
        # The task's span is still the current one (the instrumentation ends it after us).
        keep_dropped(
            name=f"run/{_name(task)}",
            started_ns=time.time_ns() - int(elapsed * 1e9),
            reason="error",
            kind=SpanKind.CONSUMER,
            attributes={"celery.task_name": _name(task), "celery.action": "run"},
        )


def _beat(worker: str) -> None:
    while True:
        CELERY_WORKER_HEARTBEAT.labels(worker).set(time.time())
        time.sleep(HEARTBEAT_SECONDS)


@signals.worker_init.connect
def _fresh_metrics_dir(**_: Any) -> None:
    """Start with an empty directory: files of a previous run would count twice."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    worker = getattr(sender, "hostname", None) or socket.gethostname()
    threading.Thread(target=_beat, args=(worker,), name="metrics-heartbeat", daemon=True).start()
    port = os.environ.get("CELERY_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        from ecommerce.observability.exposition import worker_registry

        start_http_server(int(port), registry=worker_registry())


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@signals.worker_process_init.connect
def _trace_pool_process(**_: Any) -> None:
    """Each pool process is a fresh fork: its tracer provider and exporter start here."""
    from ecommerce.observability.tracing import configure_tracing
    from ecommerce.runtime import freeze_loaded_objects

    configure_tracing(service_name=_service("worker"))
    freeze_loaded_objects()


@signals.beat_init.connect
def _trace_beat(**_: Any) -> None:
    from ecommerce.observability.tracing import configure_tracing

    configure_tracing(service_name=_service("beat"))


def _service(role: str) -> str:
    from django.conf import settings

    return f"{settings.OTEL_SERVICE_NAME}-{role}"
