"""Operational endpoints `/metrics` and `/traces`, private by default.

They need the bearer METRICS_TOKEN when it is set. Without one they are open only with
DEBUG on or METRICS_PUBLIC (a network that keeps them private); otherwise every request is
refused, although start-up already refuses that configuration (ecommerce/checks.py): a
settings override must not open them by accident.
"""

from __future__ import annotations

import hmac
import json
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body
from ecommerce.observability.exposition import registry_for_scrape
from ecommerce.observability.tracing import span_store, summarize

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
MAX_TRACES_PER_PAGE = 100


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return bool(settings.DEBUG or settings.METRICS_PUBLIC)
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _problem(request: HttpRequest, status: int, detail: str, **headers: str) -> HttpResponse:
    body = problem_body(request, status, detail=detail)
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _unauthorized(request: HttpRequest) -> HttpResponse:
    return _problem(
        request,
        401,
        "A valid bearer token is required.",
        WWW_Authenticate='Bearer realm="operations"',
    )


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of every process's metrics and the scrape-time gauges."""
    if not _authorized(request):
        return _unauthorized(request)
    return HttpResponse(generate_latest(registry_for_scrape()), content_type=CONTENT_TYPE_LATEST)


@require_safe
def traces(request: HttpRequest) -> HttpResponse:
    """Recent traces, newest first: `?trace_id=`, `?min_duration_ms=`, `?limit=` (1-100)."""
    if not _authorized(request):
        return _unauthorized(request)
    params = request.GET
    try:
        limit = int(params.get("limit", 20))
        min_duration = float(params.get("min_duration_ms", 0))
    except ValueError:
        return _problem(request, 400, "limit is an integer and min_duration_ms a number.")
    if not 1 <= limit <= MAX_TRACES_PER_PAGE or min_duration < 0:
        return _problem(request, 400, f"limit is 1 to {MAX_TRACES_PER_PAGE}; durations >= 0.")
    trace_id = params.get("trace_id", "").lower()
    store = span_store()
    if trace_id:
        if not _TRACE_ID.fullmatch(trace_id):
            return _problem(request, 400, "trace_id is 32 hexadecimal characters.")
        spans = store.trace(trace_id)
        found = [summarize(trace_id, spans)] if spans else []
    else:
        # Read a little more than asked, since the duration filter drops some.
        candidates = store.recent(limit=limit if not min_duration else MAX_TRACES_PER_PAGE * 5)
        found = [summarize(tid, spans) for tid, spans in candidates]
    found = [t for t in found if t["duration_ms"] >= min_duration][:limit]
    return JsonResponse({"count": len(found), "traces": found})
