"""Traces in the test process: ids on responses and log lines, /traces, no secrets."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals
from django.db import connections
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from rest_framework.test import APIClient

from ecommerce.api.permissions import Role
from ecommerce.observability import celery as celery_observability
from ecommerce.observability import tracing
from tests.catalog.factories import make_product
from tests.ecommerce.helpers import ERROR_URLS, project_log_handler
from tests.users.factories import UserFactory

PASSWORD = "Sup3r-secret-passphrase!"


@pytest.fixture(scope="module")
def traced() -> Iterator[None]:
    """Tracing on for this module's requests (instrumentation removed afterwards)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    assert tracing.configure_tracing()
    # Connections opened before psycopg2 was instrumented would not be traced.
    connections.close_all()
    yield
    for instrumentor in (
        Psycopg2Instrumentor,
        RedisInstrumentor,
        CeleryInstrumentor,
        HTTPXClientInstrumentor,
    ):
        instrumentor().uninstrument()
    signals.task_prerun.disconnect(dispatch_uid="ecommerce-untraced-tasks")
    celery_observability.disconnect_untraced_publish()
    tracing._configured_pid = None


def flush() -> None:
    trace.get_tracer_provider().force_flush()


@pytest.mark.django_db(transaction=True)
def test_a_request_is_one_trace_with_its_sql_and_is_listed(traced):
    make_product(sku="tr1", stock=1)
    client = APIClient()

    response = client.get("/api/products/tr1", HTTP_X_REQUEST_ID="trace-me-1")
    trace_id = response["X-Trace-Id"]
    flush()
    listed = client.get(f"/traces?trace_id={trace_id}").json()
    recent = client.get("/traces?limit=5").json()

    assert response.status_code == 200
    assert len(trace_id) == 32
    (found,) = listed["traces"]
    names = [span["name"] for span in found["spans"]]
    assert found["trace_id"] == trace_id
    assert found["root"].startswith("GET api/products/")
    assert any(span["attributes"].get("db.system") == "postgresql" for span in found["spans"])
    assert any(name.startswith("GET") for name in names)
    root = next(span for span in found["spans"] if span["parent_id"] is None)
    assert all(
        span["parent_id"] in {s["span_id"] for s in found["spans"]}
        for span in found["spans"]
        if span is not root
    )
    assert trace_id in [t["trace_id"] for t in recent["traces"]]
    starts = [t["start"] for t in recent["traces"]]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.django_db(transaction=True)
def test_traces_filters_and_bad_parameters(traced, client):
    client.get("/api/products")
    flush()
    slow_only = client.get("/traces?min_duration_ms=100000").json()
    assert slow_only == {"count": 0, "traces": []}
    assert client.get("/traces?limit=1").json()["count"] == 1
    for query in ("limit=0", "limit=101", "limit=x", "min_duration_ms=-1", "trace_id=xyz"):
        response = client.get(f"/traces?{query}")
        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/problem+json"
    assert client.get("/traces?trace_id=" + "0" * 32).json() == {"count": 0, "traces": []}


@pytest.mark.django_db(transaction=True)
def test_secrets_never_reach_logs_or_spans(traced, capfd):
    make_product(sku="sec1", stock=3)
    handler, stream = project_log_handler(json_lines=True)
    logging.getLogger().addHandler(handler)
    try:
        client = APIClient()
        registered = client.post(
            "/api/users",
            {"name": "Secret Keeper", "email": "keeper@example.com", "password": PASSWORD},
            format="json",
        )
        tokens = client.post(
            "/api/auth/token", {"email": "keeper@example.com", "password": PASSWORD}, format="json"
        ).json()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        order = client.post(
            "/api/orders",
            {"items": [{"id": "sec1", "quantity": 1}], "payment_token": "tok_success"},
            format="json",
        )
        client.post("/api/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
        trace_ids = [registered["X-Trace-Id"], order["X-Trace-Id"]]
    finally:
        logging.getLogger().removeHandler(handler)
    flush()
    store = tracing.span_store()
    spans = json.dumps([store.trace(trace_id) for trace_id in trace_ids])
    captured = stream.getvalue() + "".join(capfd.readouterr())

    assert registered.status_code == order.status_code == 201
    assert "user_registered" in captured  # the logs were captured at all
    assert "order_placed" in captured
    assert spans.count('"trace_id"') >= 2
    for secret in (PASSWORD, tokens["access"], tokens["refresh"], "tok_success"):
        assert secret not in captured
        assert secret not in spans


@pytest.mark.django_db(transaction=True)
def test_order_request_logs_share_its_trace_id(traced):
    make_product(sku="lg1", stock=3)
    handler, stream = project_log_handler(json_lines=True)
    logging.getLogger().addHandler(handler)
    try:
        client = APIClient()
        client.force_authenticate(UserFactory(roles=[Role.CUSTOMER]))
        response = client.post(
            "/api/orders",
            {"items": [{"id": "lg1", "quantity": 1}], "payment_token": "tok_success"},
            format="json",
        )
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    placed = [line for line in lines if line.get("event") == "order_placed"]

    assert response.status_code == 201
    assert len(placed) == 1
    assert placed[0]["trace_id"] == response["X-Trace-Id"]
    assert placed[0]["request_id"] == response["X-Request-ID"]
    assert len(placed[0]["span_id"]) == 16


@pytest.mark.django_db(transaction=True)
def test_spans_carry_no_query_string_values(traced):
    """Search terms and tokens travel in query strings: neither /traces nor OTLP gets them."""
    make_product(sku="q1", stock=1)
    client = APIClient()

    response = client.get("/api/products?search=hush-hush-term&page_size=5")
    flush()
    spans = tracing.span_store().trace(response["X-Trace-Id"])
    (server,) = [span for span in spans if span["kind"] == "server"]

    assert response.status_code == 200, response.content
    assert "hush-hush-term" not in json.dumps(spans)
    assert "page_size" not in json.dumps(spans)
    urls = {
        key: value for key, value in server["attributes"].items() if key in tracing.URL_ATTRIBUTES
    }
    assert urls  # the server span names its URL, without the query
    assert set(urls.values()) <= {"http://testserver/api/products", "/api/products"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://shop.example/api/products?search=x&token=y", "https://shop.example/api/products"),
        ("/api/users/set-password?token=abc#top", "/api/users/set-password"),
        ("/api/products", "/api/products"),
    ],
)
def test_without_query_cuts_the_query_and_fragment(value, expected):
    assert tracing.without_query(value) == expected


@pytest.fixture
def head_drops_every_trace(traced: None) -> Iterator[None]:
    """The head sampler drops every new trace (as a ratio of 0 would) for one test."""
    sampler = trace.get_tracer_provider().sampler  # type: ignore[attr-defined]
    root = sampler.root
    sampler.root = TraceIdRatioBased(0.0)
    yield
    sampler.root = root


def stored_spans(trace_id: str) -> list[dict[str, Any]]:
    flush()
    return tracing.span_store().trace(trace_id)


@pytest.mark.django_db(transaction=True)
def test_a_dropped_trace_keeps_a_request_that_failed_and_nothing_else(
    head_drops_every_trace: None, settings: Any
) -> None:
    settings.ROOT_URLCONF = ERROR_URLS
    client = APIClient()
    fine = client.get("/api/test/get-only")
    failed = client.get("/api/test/boom")

    assert (fine.status_code, failed.status_code) == (200, 500)
    assert stored_spans(fine["X-Trace-Id"]) == []
    (span,) = stored_spans(failed["X-Trace-Id"])
    assert span["name"] == "GET api/test/boom"
    assert span["status"] == "error"
    assert span["attributes"]["sampling.kept"] == "error"
    assert span["attributes"]["http.status_code"] == "500"
    assert span["trace_id"] == failed["X-Trace-Id"]


@pytest.mark.django_db(transaction=True)
def test_a_dropped_trace_keeps_a_slow_request(head_drops_every_trace: None, settings: Any) -> None:
    settings.OTEL_SLOW_REQUEST_SECONDS = 0.0  # every request is slow
    make_product(sku="slow1", stock=1)

    response = APIClient().get("/api/products/slow1")

    (span,) = stored_spans(response["X-Trace-Id"])
    assert span["attributes"]["sampling.kept"] == "slow"
    assert span["status"] == "ok"
    assert span["name"].startswith("GET api/products/")


def test_a_dropped_trace_keeps_a_task_that_failed(head_drops_every_trace: None) -> None:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    task = type("Task", (), {"name": "tests.always_fails"})()
    tracer = trace.get_tracer("tests")
    kept = []
    for state in ("FAILURE", "SUCCESS"):
        with tracer.start_as_current_span("run/tests.always_fails") as dropped:
            assert not dropped.is_recording()
            celery_observability._task_started(task_id=f"t-{state}")
            celery_observability._untraced_unless_sampled(task_id=f"t-{state}")
            assert not is_instrumentation_enabled()  # the task's SQL makes no spans
            celery_observability._task_finished(task_id=f"t-{state}", task=task, state=state)
            assert is_instrumentation_enabled()
            kept.append(stored_spans(format(dropped.get_span_context().trace_id, "032x")))

    failed, succeeded = kept
    assert succeeded == []
    (span,) = failed
    assert span["name"] == "run/tests.always_fails"
    assert span["status"] == "error"
    assert span["kind"] == "consumer"
    assert span["attributes"]["celery.task_name"] == "tests.always_fails"


def context_of(*, sampled: bool) -> Any:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0)
    span_context = trace.SpanContext(1, 2, is_remote=False, trace_flags=flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


@pytest.mark.parametrize(
    ("ratio", "parent", "kind", "attributes", "recorded"),
    [
        (0.0, False, SpanKind.SERVER, {tracing.KEPT_ATTRIBUTE: "error"}, True),
        (0.0, None, SpanKind.SERVER, {tracing.KEPT_ATTRIBUTE: "slow"}, True),
        (0.0, False, SpanKind.SERVER, {}, False),
        (1.0, False, SpanKind.CLIENT, {}, False),  # a dropped trace stays dropped
        (0.0, True, SpanKind.CLIENT, {}, True),  # a sampled one keeps all its spans
        (1.0, None, SpanKind.CLIENT, {}, False),  # no trace starts with a client span
        (1.0, None, SpanKind.SERVER, {}, True),
        (0.0, None, SpanKind.SERVER, {}, False),
        (1.0, None, SpanKind.CONSUMER, {}, True),
    ],
)
def test_the_sampler_follows_the_parent_and_records_kept_spans(
    ratio: float,
    parent: bool | None,
    kind: SpanKind,
    attributes: dict[str, str],
    recorded: bool,
) -> None:
    sampler = tracing.RootClientSpansDropped(TraceIdRatioBased(ratio))
    context = None if parent is None else context_of(sampled=parent)

    result = sampler.should_sample(context, 1, "GET x", kind, attributes)

    assert result.decision.is_sampled() is recorded
    assert result.decision == (Decision.RECORD_AND_SAMPLE if recorded else Decision.DROP)


def test_instrumented_libraries_make_no_spans_inside_a_dropped_trace(traced: None) -> None:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    flags = trace.TraceFlags(0)
    dropped = trace.NonRecordingSpan(trace.SpanContext(1, 2, is_remote=False, trace_flags=flags))
    with trace.get_tracer("tests").start_as_current_span("GET sampled") as sampled:
        assert sampled.is_recording()  # this module samples every trace
        with tracing.untraced_unless_sampled():
            inside_sampled = is_instrumentation_enabled()
    with trace.use_span(dropped), tracing.untraced_unless_sampled():
        inside_dropped = is_instrumentation_enabled()

    assert (inside_sampled, inside_dropped) == (True, False)
    assert is_instrumentation_enabled()


def fast_read_span(kept: str | None = None, **environ: str) -> str | None:
    return tracing.record_server_span(
        "GET api/products/x",
        environ=environ,
        started_ns=time.time_ns() - 1_000_000,
        attributes=lambda: {"http.method": "GET", "http.route": "api/products/x"},
        kept=kept,
    )


def test_a_fast_read_records_its_span_when_its_trace_is_sampled(traced: None) -> None:
    trace_id = fast_read_span()

    assert trace_id is not None
    (span,) = stored_spans(trace_id)
    assert (span["name"], span["kind"], span["parent_id"]) == ("GET api/products/x", "server", None)
    assert span["duration_ms"] >= 1


def test_fast_reads_are_sampled_at_the_ratio(traced: None) -> None:
    # The common case (a new trace, dropped) is decided apart from the full decision; a
    # trace it finds sampled must be recorded as sampled, not decided a second time.
    sampler = trace.get_tracer_provider().sampler  # type: ignore[attr-defined]
    root, sampler.root = sampler.root, TraceIdRatioBased(0.5)
    try:
        ids = [fast_read_span() for _ in range(400)]
    finally:
        sampler.root = root
    flush()
    store = tracing.span_store()
    recorded = sum(1 for trace_id in ids if trace_id and store.trace(trace_id))

    assert all(trace_id and len(trace_id) == 32 for trace_id in ids)
    assert len(set(ids)) == 400
    assert 150 <= recorded <= 250, recorded  # 200 expected; 100 if decided twice


def test_a_fast_read_in_a_dropped_trace_records_nothing_but_follows_its_parent(
    head_drops_every_trace: None,
) -> None:
    dropped = fast_read_span()
    parent_trace, parent_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    child = fast_read_span(HTTP_TRACEPARENT=f"00-{parent_trace}-{parent_span}-01")

    assert dropped is not None
    assert len(dropped) == 32
    assert stored_spans(dropped) == []
    assert child == parent_trace  # a sampled caller's trace goes on, whatever the head says
    (span,) = stored_spans(child)
    assert span["parent_id"] == parent_span
    slow = fast_read_span(kept="slow")
    (kept,) = stored_spans(slow or "")
    assert kept["attributes"]["sampling.kept"] == "slow"
    assert kept["attributes"]["http.route"] == "api/products/x"


@pytest.mark.django_db(transaction=True)
def test_a_request_joins_its_callers_trace_and_a_failure_marks_its_span(
    traced: None, settings: Any
) -> None:
    settings.ROOT_URLCONF = ERROR_URLS
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    client = APIClient()

    joined = client.get(
        "/api/test/get-only", HTTP_TRACEPARENT=f"00-{caller_trace}-{caller_span}-01"
    )
    failed = client.get("/api/test/boom")
    probe = client.get("/health/live")
    # Behind a Unix socket gunicorn takes SERVER_PORT from the Host header, whatever it says:
    # Django refuses that Host (400), and the span says so.
    odd_port = client.get("/api/test/get-only", HTTP_HOST="testserver:abc", SERVER_PORT="abc")

    assert joined["X-Trace-Id"] == caller_trace
    (span,) = [s for s in stored_spans(caller_trace) if s["kind"] == "server"]
    assert (span["name"], span["parent_id"]) == ("GET api/test/get-only", caller_span)
    assert span["attributes"]["http.status_code"] == "200"
    (boom,) = [s for s in stored_spans(failed["X-Trace-Id"]) if s["kind"] == "server"]
    assert (boom["name"], boom["status"]) == ("GET api/test/boom", "error")
    assert "X-Trace-Id" not in probe  # probes make no traces
    assert odd_port.status_code == 400
    (odd,) = [s for s in stored_spans(odd_port["X-Trace-Id"]) if s["kind"] == "server"]
    assert odd["attributes"]["http.status_code"] == "400"


@pytest.fixture
def published(settings: Any) -> Iterator[Any]:
    """publish(): send a task message for real to a throwaway queue on the test Redis, and
    return the headers the broker got. Its own app (never the current one) and connection:
    kombu's pools are process-wide, and closing them would close the project app's too."""
    import kombu
    import redis
    from celery import Celery

    app = Celery("tests-publish", broker=settings.REDIS_URL, set_as_current=False)
    connection = kombu.Connection(settings.REDIS_URL)
    producer = app.amqp.Producer(connection)
    queue = f"tests-publish-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.REDIS_URL)

    def publish() -> dict[str, Any]:
        app.send_task("tests.published", kwargs={"n": 1}, queue=queue, producer=producer)
        (message,) = client.lrange(queue, 0, -1)
        client.delete(queue)
        return dict(json.loads(message)["headers"])

    yield publish
    client.delete(queue, f"_kombu.binding.{queue}")
    connection.release()
    client.close()


def test_a_publish_in_a_dropped_trace_carries_its_id_and_makes_no_span(
    traced: None, published: Any
) -> None:
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("POST api/orders") as sampled:
        in_sampled = published()
    flags = trace.TraceFlags(0)
    dropped = trace.NonRecordingSpan(
        trace.SpanContext(uuid.uuid4().int >> 64, 7, is_remote=False, trace_flags=flags)
    )
    with trace.use_span(dropped):
        in_dropped = published()
    outside = published()  # the relay's re-sends: a trace of their own, at the head's ratio

    sampled_id = format(sampled.get_span_context().trace_id, "032x")
    (producer,) = [s for s in stored_spans(sampled_id) if s["kind"] == "producer"]
    assert producer["name"] == "apply_async/tests.published"
    assert in_sampled["traceparent"].split("-")[1:3] == [sampled_id, producer["span_id"]]
    dropped_id = format(dropped.get_span_context().trace_id, "032x")
    assert in_dropped["traceparent"] == f"00-{dropped_id}-{7:016x}-00"
    assert stored_spans(dropped_id) == []
    (alone,) = stored_spans(outside["traceparent"].split("-")[1])  # this module samples all
    assert (alone["name"], alone["parent_id"]) == ("apply_async/tests.published", None)
    assert celery_observability._traced_publishes == set()  # nothing kept per message


def test_the_publishing_fixture_leaves_the_project_app_current(published: Any) -> None:
    """Shared tasks (`.delay()`) resolve through the current app: another app made current
    would send the rest of this process's tasks to its broker."""
    import celery

    from ecommerce.celery import app

    published()

    assert celery.current_app._get_current_object() is app
