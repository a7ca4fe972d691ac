"""Per-request observability: the server span of every request (TracingMiddleware), and
HTTP metrics by view, method and status (MetricsMiddleware).

The metrics use django-prometheus's names (dashboards and alerts expect them) but not its
middleware pair, which records a dozen samples per request: two samples per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django_prometheus.middleware import Metrics
from opentelemetry import context, trace
from opentelemetry.trace import StatusCode

from ecommerce.observability.tracing import start_server_span, untraced_unless_sampled

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        metrics = Metrics.get_instance()
        self.latency = metrics.requests_latency_by_view_method
        self.responses = metrics.responses_by_status_view_method

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else None) or "<unnamed view>"
        method = request.method if request.method in _METHODS else "<other>"
        self.latency.labels(view=view, method=method).observe(time.perf_counter() - started)
        self.responses.labels(status=str(response.status_code), view=view, method=method).inc()
        return response


# Paths whose requests make no span: probes, scrapes, the trace viewer, static files.
UNTRACED_PREFIXES = ("/health", "/metrics", "/traces", "/static/")


class TracingMiddleware:
    """The server span of a request, outermost in MIDDLEWARE (with OTEL_ENABLED).

    Named `METHOD route` once the URL is resolved (`process_view`), with the HTTP
    attributes of OpenTelemetry's Django instrumentation (no query string: it may hold
    tokens); status ERROR on a 5xx, the exception recorded when a view raised. A request
    whose trace the sampler drops gets a span that records nothing, and the libraries it
    calls make no spans (ecommerce.observability.tracing.start_server_span and
    untraced_unless_sampled): most of what tracing costs is for the traces nobody sees.
    Replaces that instrumentation, whose work for a dropped trace cost about a tenth of an
    order's CPU.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(UNTRACED_PREFIXES):
            return self.get_response(request)
        method = request.method if request.method in _METHODS else "HTTP"
        started = start_server_span(
            method, environ=request.META, attributes=lambda: _request_attributes(request)
        )
        if started is None:  # tracing is not configured in this process
            return self.get_response(request)
        span, parent = started
        request._trace_span = span  # type: ignore[attr-defined]
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            with untraced_unless_sampled():
                response = self.get_response(request)
        except BaseException as exc:  # Django turns a view's errors into responses: rare
            self.process_exception(request, exc)
            span.set_status(StatusCode.ERROR)
            span.end()
            raise
        finally:
            context.detach(token)
        span.set_attribute("http.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()
        return response

    def process_view(self, request: HttpRequest, *_: Any) -> None:
        span = getattr(request, "_trace_span", None)
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None)
        if span is not None and route and span.is_recording():
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        span = getattr(request, "_trace_span", None)
        if span is not None and span.is_recording():
            span.record_exception(exception)


def _request_attributes(request: HttpRequest) -> dict[str, Any]:
    """What a recorded server span says of its request (no query string, no client address)."""
    meta = request.META
    attributes: dict[str, Any] = {
        "http.method": request.method or "",
        "http.scheme": request.scheme or "http",
        "http.target": request.path,
        "http.flavor": str(meta.get("SERVER_PROTOCOL", "")).partition("/")[2],
    }
    port = str(meta.get("SERVER_PORT", ""))
    if port.isdigit():  # behind a Unix socket gunicorn takes it from the Host header
        attributes["net.host.port"] = int(port)
    host = meta.get("HTTP_HOST")
    if host:
        attributes["http.host"] = host
        attributes["http.url"] = f"{attributes['http.scheme']}://{host}{request.path}"
    agent = meta.get("HTTP_USER_AGENT")
    if agent:
        attributes["http.user_agent"] = agent
    return attributes
