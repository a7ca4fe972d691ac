"""HTTP metrics by view, method and status: two samples per request, no more.

Uses django-prometheus's metric names (dashboards and alerts expect them) but not its
middleware pair, which records a dozen samples per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django_prometheus.middleware import Metrics

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
