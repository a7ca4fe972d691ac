"""OpenTelemetry for every process, and the shared span store behind `/traces`.

`configure_tracing()` runs once per process, after any fork: gunicorn's `post_fork`,
Celery's `worker_process_init` and `beat_init`, the payment sandbox's start. It sets the
tracer provider (service name and resource from settings, a parent-based ratio sampler),
instruments psycopg2, Redis, Celery and httpx, and exports finished spans in batches to the
span store (and over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set). Django's requests get
their server span from ecommerce.observability.middleware.TracingMiddleware, and warm
reads answered before Django from `record_server_span`.

Head sampling, with two exceptions: a trace the sampler drops costs next to nothing (no
SDK span, and no spans from the instrumented libraries inside it: `untraced_unless_sampled`),
yet a request that fails or is slow, or a task that fails, keeps its span (`keep_dropped`).

W3C trace context travels in HTTP headers and in Celery message headers, so one order is
one trace: the API request, its SQL, the payment task in a worker, and the provider call.

The span store is shared by all processes: a Redis sorted set of recent trace ids and one
capped list of spans per trace, all with a TTL (a SQLite file under var/ in embedded mode,
so the local gunicorn workers share it too).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, StatusCode

from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

# Attributes worth showing on /traces; everything else stays in OTLP exports only.
KEY_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.target",
        "url.path",
        "http.status_code",
        "http.response.status_code",
        "http.url",
        "url.full",
        "server.address",
        "db.system",
        "db.statement",
        "db.name",
        "celery.task_name",
        "celery.action",
        "messaging.destination",
        "messaging.message.id",
        "order.id",
        "sampling.kept",
    }
)
MAX_ATTRIBUTE_CHARS = 300
# Attributes that may hold a URL's query string: search terms, set-password and other tokens
# travel there. Their query part is cut off in the process (request hooks) and again when a
# span is written to the store, so neither /traces nor an OTLP backend ever holds one.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
QUERY_ATTRIBUTES = ("url.query",)

_configured_pid: int | None = None
_lock = threading.Lock()


# A span carrying this attribute is recorded whatever the head decision was (`keep_dropped`:
# an error or a slow request whose trace was not sampled); its value says why.
KEPT_ATTRIBUTE = "sampling.kept"


class RootClientSpansDropped(Sampler):
    """Parent-based sampling with `root` deciding new traces (a TraceIdRatioBased), except
    that a client span never starts a trace, and a span kept after the fact
    (KEPT_ATTRIBUTE) is always recorded.

    A database or Redis call outside any request or task (health probes, metrics scrapes,
    the beat's heartbeat) would otherwise be a one-span trace of its own. What the SDK's
    ParentBased does (a sampled parent's children are sampled, a dropped one's dropped, the
    parent's trace state kept) is done here in one pass: this runs for every span.
    """

    def __init__(self, root: Sampler) -> None:
        self.root = root

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if attributes and attributes.get(KEPT_ATTRIBUTE):
            state = parent.trace_state if parent.is_valid else None
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        if parent.is_valid:
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self.root.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RootClientSpansDropped(ParentBased(root={self.root.get_description()}))"


def without_query(value: str) -> str:
    """`value` (a URL or a request target) without its query string and fragment."""
    return value.split("?", 1)[0].split("#", 1)[0]


def strip_query_attributes(span: Any, *_args: Any) -> None:
    """A request hook: replace the URL attributes of a live span by their query-less form."""
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return
    for key in URL_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, without_query(str(attributes[key])))
    for key in QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """What the store keeps of a span: ids, timing, status and KEY_ATTRIBUTES (cut)."""
    context = span.get_span_context()
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    # Each read of a ReadableSpan's attributes makes a new read-only view: one each.
    values = span.attributes or {}
    attributes = {}
    for key, value in values.items():
        if key not in KEY_ATTRIBUTES:
            continue
        text = str(value)
        attributes[key] = (without_query(text) if key in URL_ATTRIBUTES else text)[
            :MAX_ATTRIBUTE_CHARS
        ]
    parent = span.parent
    status = span.status.status_code
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "service": span.resource.attributes.get("service.name", "unknown"),
        "kind": span.kind.name.lower(),
        "start": start / 1e9,
        "duration_ms": round((end - start) / 1e6, 3),
        "status": status.name.lower() if status != StatusCode.UNSET else "ok",
        "attributes": attributes,
    }


class SpanStore(Protocol):
    def add(self, spans: Sequence[dict[str, Any]]) -> None: ...

    def recent(self, *, limit: int) -> list[tuple[str, list[dict[str, Any]]]]: ...

    def trace(self, trace_id: str) -> list[dict[str, Any]]: ...


class RedisSpanStore:
    """Recent traces in Redis: bounded by count, spans per trace and age."""

    def __init__(
        self, *, url: str, prefix: str, max_traces: int, max_spans: int, ttl_seconds: int
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.index = f"{prefix}:traces:index"
        self.prefix = f"{prefix}:traces:t:"
        self.max_traces, self.max_spans, self.ttl = max_traces, max_spans, ttl_seconds

    def add(self, spans: Sequence[dict[str, Any]]) -> None:
        # One round trip, two commands per trace of the batch (not per span) and three for
        # the batch; a second only when a trace outgrew max_spans or the index max_traces.
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            by_trace.setdefault(span["trace_id"], []).append(span)
        pipe = self.client.pipeline(transaction=False)
        for trace_id, group in by_trace.items():
            key = self.prefix + trace_id
            pipe.rpush(key, *(json.dumps(span, separators=(",", ":")) for span in group))
            pipe.expire(key, self.ttl)
        # LT keeps the earliest start seen for a trace: children often end first.
        starts = {trace_id: min(s["start"] for s in group) for trace_id, group in by_trace.items()}
        pipe.zadd(self.index, starts, lt=True)
        pipe.expire(self.index, self.ttl)
        pipe.zcard(self.index)
        results = pipe.execute()
        lengths, traces = results[0 : 2 * len(by_trace) : 2], results[-1]
        pipe = self.client.pipeline(transaction=False)
        for trace_id, length in zip(by_trace, lengths, strict=True):
            if length > self.max_spans:
                pipe.ltrim(self.prefix + trace_id, -self.max_spans, -1)
        over = traces > self.max_traces
        if over:
            pipe.zrange(self.index, 0, -(self.max_traces + 1))
        if not len(pipe):
            return
        trimmed = pipe.execute()
        evicted = trimmed[-1] if over else []
        if evicted:
            # Drop the oldest traces' spans with them, so memory stays bounded.
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(self.index, *evicted)
            pipe.delete(*(self.prefix + raw.decode() for raw in evicted))
            pipe.execute()

    def recent(self, *, limit: int) -> list[tuple[str, list[dict[str, Any]]]]:
        ids = [raw.decode() for raw in self.client.zrevrange(self.index, 0, limit - 1)]
        pipe = self.client.pipeline(transaction=False)
        for trace_id in ids:
            pipe.lrange(self.prefix + trace_id, 0, -1)
        return [
            (trace_id, [json.loads(raw) for raw in rows])
            for trace_id, rows in zip(ids, pipe.execute(), strict=True)
            if rows
        ]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.prefix + trace_id, 0, -1)]


class SqliteSpanStore:
    """Recent traces in a SQLite file, for embedded mode: every local process shares it."""

    def __init__(self, *, path: str, max_traces: int, max_spans: int) -> None:
        import sqlite3

        self.max_traces, self.max_spans = max_traces, max_spans
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, timeout=2, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS spans (trace_id TEXT, start REAL, body TEXT)")
        self.db.execute("CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id)")

    def add(self, spans: Sequence[dict[str, Any]]) -> None:
        rows = [(s["trace_id"], s["start"], json.dumps(s)) for s in spans]
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT INTO spans VALUES (?, ?, ?)", rows)
            # Keep the newest traces only.
            self.db.execute(
                "DELETE FROM spans WHERE trace_id NOT IN (SELECT trace_id FROM spans "
                "GROUP BY trace_id ORDER BY MIN(start) DESC LIMIT ?)",
                [self.max_traces],
            )
            self.db.execute("COMMIT")

    def recent(self, *, limit: int) -> list[tuple[str, list[dict[str, Any]]]]:
        with self.lock:
            ids = [
                row[0]
                for row in self.db.execute(
                    "SELECT trace_id FROM spans GROUP BY trace_id ORDER BY MIN(start) DESC LIMIT ?",
                    [limit],
                )
            ]
        return [(trace_id, self.trace(trace_id)) for trace_id in ids]

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT body FROM spans WHERE trace_id = ? ORDER BY start LIMIT ?",
                [trace_id, self.max_spans],
            ).fetchall()
        return [json.loads(row[0]) for row in rows]


_store: SpanStore | None = None


def span_store() -> SpanStore:
    """The process's span store, built from Django settings on first use."""
    global _store
    if _store is None:
        from django.conf import settings

        if settings.REDIS_URL:
            _store = RedisSpanStore(
                url=settings.REDIS_URL,
                prefix=settings.TRACES_KEY_PREFIX,
                max_traces=settings.TRACES_MAX_TRACES,
                max_spans=settings.TRACES_MAX_SPANS_PER_TRACE,
                ttl_seconds=settings.TRACES_TTL_SECONDS,
            )
        else:
            path = settings.BASE_DIR / "var" / "traces.sqlite3"
            path.parent.mkdir(parents=True, exist_ok=True)
            _store = SqliteSpanStore(
                path=str(path),
                max_traces=settings.TRACES_MAX_TRACES,
                max_spans=settings.TRACES_MAX_SPANS_PER_TRACE,
            )
    return _store


class SpanStoreExporter(SpanExporter):
    def __init__(self, store: SpanStore) -> None:
        self.store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.store.add([span_to_dict(span) for span in spans])
        except Exception as exc:  # a trace store outage must never hurt the service
            logger.warning("trace_export_failed", error=f"{type(exc).__name__}: {exc}"[:200])
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def build_provider(
    *, service_name: str, ratio: float, store: SpanStore, otlp_endpoint: str = "", **resource: str
) -> TracerProvider:
    attributes = {
        "service.name": service_name,
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        **resource,
    }
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=RootClientSpansDropped(TraceIdRatioBased(ratio)),
        id_generator=PresetIds(),
    )
    provider.add_span_processor(
        BatchSpanProcessor(SpanStoreExporter(store), schedule_delay_millis=500)
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(*, service_name: str | None = None) -> bool:
    """Set up tracing for this process (idempotent per PID). Returns True if enabled."""
    global _configured_pid
    from django.conf import settings

    if not settings.OTEL_ENABLED:
        return False
    with _lock:
        if _configured_pid == os.getpid():
            return True
        provider = build_provider(
            service_name=service_name or settings.OTEL_SERVICE_NAME,
            ratio=settings.OTEL_TRACES_SAMPLER_RATIO,
            store=span_store(),
            otlp_endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT,
            **{
                "service.version": settings.SERVICE_VERSION,
                "deployment.environment": settings.DEPLOYMENT_ENVIRONMENT,
            },
        )
        trace.set_tracer_provider(provider)
        _instrument()
        _configured_pid = os.getpid()
    logger.info("tracing_configured", service=service_name or settings.OTEL_SERVICE_NAME)
    return True


def _instrument() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Django's requests: ecommerce.observability.middleware.TracingMiddleware.
    Psycopg2Instrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()
    celery = CeleryInstrumentor()
    celery.instrument()
    # After the instrumentation's own task_prerun handler: its span is then the current one.
    from ecommerce.observability.celery import connect_untraced_publish, connect_untraced_tasks

    connect_untraced_tasks()
    connect_untraced_publish(celery)
    HTTPXClientInstrumentor().instrument(request_hook=strip_query_attributes)


class PresetIds(RandomIdGenerator):
    """Random ids, but for a trace id handed to `preset`: the next trace started in this
    thread takes it (`record_server_span` decided on it already)."""

    def __init__(self) -> None:
        self._preset = threading.local()

    def preset(self, trace_id: int) -> None:
        self._preset.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int | None = getattr(self._preset, "trace_id", None)
        if trace_id is None:
            return super().generate_trace_id()
        self._preset.trace_id = None
        return trace_id


_PROPAGATION_KEYS: tuple[str, ...] | None = None
_NOT_SAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT)


def _carries_context(environ: dict[str, Any]) -> bool:
    """Whether a WSGI environ holds any header the configured propagators read."""
    global _PROPAGATION_KEYS
    if _PROPAGATION_KEYS is None:
        fields = propagate.get_global_textmap().fields
        _PROPAGATION_KEYS = tuple("HTTP_" + f.upper().replace("-", "_") for f in fields)
    return not environ.keys().isdisjoint(_PROPAGATION_KEYS)


def start_server_span(
    name: str,
    *,
    environ: dict[str, Any],
    attributes: Callable[[], dict[str, Any]],
    started_ns: int | None = None,
    kept: str | None = None,
) -> tuple[Any, Any] | None:
    """Start the server span of a request: (span, the context to make current with it), or
    None when tracing is off in this process.

    The request's own trace context (W3C headers in `environ`) makes it a child. A new
    trace that the sampler drops costs its decision only: the span is a NonRecordingSpan
    with a random trace id, as the SDK would make it, without the SDK's work. A sampled one
    is made by the SDK with the trace id the decision was taken on (PresetIds), and
    `attributes()`. `kept` (KEPT_ATTRIBUTE's value) records it whatever the head decision.
    """
    decided = _head_decision(name, environ=environ, kept=kept)
    if decided is None:
        return None
    provider, context, dropped = decided
    if dropped is not None:
        ids = provider.id_generator
        span_context = trace.SpanContext(
            dropped, ids.generate_span_id(), is_remote=False, trace_flags=_NOT_SAMPLED
        )
        return trace.NonRecordingSpan(span_context), context
    return _start_recorded(provider, name, context, attributes, started_ns, kept), context


def record_server_span(
    name: str,
    *,
    environ: dict[str, Any],
    started_ns: int,
    attributes: Callable[[], dict[str, Any]],
    kept: str | None = None,
) -> str | None:
    """Record the server span of a request answered outside Django (ecommerce/api/fastpath),
    from `started_ns` to now (`start_server_span`); returns its trace id for X-Trace-Id
    (None: tracing is off). A new trace the sampler drops records nothing and makes no
    span object at all: its id is all the answer carries."""
    decided = _head_decision(name, environ=environ, kept=kept)
    if decided is None:
        return None
    provider, context, dropped = decided
    if dropped is None:
        span = _start_recorded(provider, name, context, attributes, started_ns, kept)
        span.end()
        dropped = span.get_span_context().trace_id
    return format(dropped, "032x")


def _head_decision(
    name: str, *, environ: dict[str, Any], kept: str | None
) -> tuple[TracerProvider, Any, int | None] | None:
    """(the provider, the request's trace context from `environ`, and the id of the new
    trace when the sampler drops it, else None), or None when tracing is off in this
    process. A sampled new trace's id is preset for the SDK's span (PresetIds)."""
    if _configured_pid != os.getpid():  # configure_tracing() did not run in this process
        return None
    provider = trace.get_tracer_provider()
    ids = getattr(provider, "id_generator", None)
    if not isinstance(provider, TracerProvider) or not isinstance(ids, PresetIds):
        return None
    context = None
    if _carries_context(environ):
        from opentelemetry.instrumentation.wsgi import wsgi_getter

        context = propagate.extract(environ, getter=wsgi_getter)
    if kept is None and not trace.get_current_span(context).get_span_context().is_valid:
        trace_id = ids.generate_trace_id()
        if not _starts_sampled(provider.sampler, trace_id, name):
            return provider, context, trace_id
        ids.preset(trace_id)
    return provider, context, None


def _start_recorded(
    provider: TracerProvider,
    name: str,
    context: Any,
    attributes: Callable[[], dict[str, Any]],
    started_ns: int | None,
    kept: str | None,
) -> Any:
    values = attributes()
    if kept is not None:
        values[KEPT_ATTRIBUTE] = kept
    return _tracer(provider).start_span(
        name, context=context, kind=SpanKind.SERVER, start_time=started_ns, attributes=values
    )


def _starts_sampled(sampler: Sampler, trace_id: int, name: str) -> bool:
    """Whether a new trace (no parent) of a server span with this id is sampled."""
    root = getattr(sampler, "root", None)
    if isinstance(root, TraceIdRatioBased):  # what it decides, without its result objects
        return trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < root.bound
    return sampler.should_sample(None, trace_id, name, SpanKind.SERVER).decision.is_sampled()


_tracers: dict[int, Any] = {}


def _tracer(provider: TracerProvider) -> Any:
    tracer = _tracers.get(id(provider))
    if tracer is None:
        tracer = _tracers[id(provider)] = provider.get_tracer(__name__)
    return tracer


@contextmanager
def untraced_unless_sampled() -> Iterator[None]:
    """Inside a span whose trace was not sampled, the instrumented libraries (SQL, Redis,
    httpx) make no spans at all.

    A span of a dropped trace records nothing, but making it still costs its instrumentation
    (a sampler decision, ids, a context switch): about a fifth of an order's CPU at the
    default sampling, for the nine requests in ten whose trace nobody sees. Trace context
    still travels: Celery's publish and the task it starts carry the dropped trace's id
    (the task is not sampled either), and `keep_dropped` still records what fails.
    """
    if trace.get_current_span().is_recording():
        yield
        return
    with suppress_instrumentation():
        yield


def keep_dropped(
    *,
    name: str,
    started_ns: int,
    reason: str,
    kind: SpanKind = SpanKind.SERVER,
    attributes: dict[str, Any] | None = None,
) -> bool:
    """Record the span of a request or task whose trace the head sampler dropped and that
    turned out worth keeping: an error (`reason` "error") or a slow request ("slow").

    Head sampling decides before anyone knows how a request ends; this is its exception.
    The kept span runs from `started_ns` to now, in the dropped trace (so the X-Trace-Id a
    client got finds it on /traces), as a child of the dropped span; what ran inside it
    (SQL, Redis) was not recorded. Returns whether a span was recorded (False inside a
    recorded span, or outside any).
    """
    current = trace.get_current_span()
    if current.is_recording() or not current.get_span_context().is_valid:
        return False
    span = trace.get_tracer(__name__).start_span(
        name,
        context=trace.set_span_in_context(current),
        kind=kind,
        start_time=started_ns,
        attributes={**(attributes or {}), KEPT_ATTRIBUTE: reason},
    )
    if reason == "error":
        span.set_status(StatusCode.ERROR)
    span.end()
    return True


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span, as hex, or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def summarize(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    spans = sorted(spans, key=lambda span: span["start"])
    start = spans[0]["start"]
    end = max(span["start"] + span["duration_ms"] / 1000 for span in spans)
    ids = {span["span_id"] for span in spans}
    root = next((span for span in spans if span["parent_id"] not in ids), spans[0])
    return {
        "trace_id": trace_id,
        "root": root["name"],
        "services": sorted({span["service"] for span in spans}),
        "start": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
        + f".{int(start % 1 * 1e6):06d}Z",
        "duration_ms": round((end - start) * 1000, 3),
        "span_count": len(spans),
        "spans": spans,
    }
