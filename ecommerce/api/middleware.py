"""Gateway middleware: request ids, and problem+json for errors that happen outside DRF."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ecommerce.api.exceptions import (
    PROBLEM_CONTENT_TYPE,
    database_outage_problem,
    is_database_outage,
    problem_body,
)
from ecommerce.observability.logging import get_logger
from ecommerce.observability.tracing import current_trace_ids, keep_dropped

logger = get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
TRACE_ID_HEADER = "X-Trace-Id"
# A caller's id is kept only when it is a short printable token, so it is safe in logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=@/-]{0,127}")
# First path segments whose errors are problem+json; the admin keeps Django's HTML pages.
# Whole segments, so that look-alikes such as `/apiary` keep Django's responses too.
PROBLEM_PATH_ROOTS = frozenset({"api", "health", "metrics", "traces"})
# Headers of the original response that still mean something on the problem response.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
# Set on a request whose 500 came from a database outage inside a middleware (the signal
# receiver below), so ProblemDetailsMiddleware can answer 503 instead.
_DATABASE_OUTAGE_ATTRIBUTE = "_database_outage"

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def request_id_from(value: str | None) -> str:
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Take or mint `X-Request-ID`, bind it to every log line, and return it."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started_ns = time.time_ns()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        ids = current_trace_ids()
        if ids is not None:
            response[TRACE_ID_HEADER] = ids[0]
            _keep_if_worth_it(request, response, started_ns)
        return response


def _keep_if_worth_it(request: HttpRequest, response: HttpResponseBase, started_ns: int) -> None:
    """A request that failed (5xx) or was slow keeps its span though its trace was not
    sampled (ecommerce.observability.tracing.keep_dropped)."""
    slow_ns = settings.OTEL_SLOW_REQUEST_SECONDS * 1e9
    if response.status_code >= 500:
        reason = "error"
    elif time.time_ns() - started_ns >= slow_ns:
        reason = "slow"
    else:
        return
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) or ""
    keep_dropped(
        name=f"{request.method} {route}".rstrip(),
        started_ns=started_ns,
        reason=reason,
        attributes={
            "http.method": request.method or "",
            "http.route": route,
            "http.target": request.path,
            "http.status_code": response.status_code,
        },
    )


def is_problem_path(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in PROBLEM_PATH_ROOTS


def problem_response(
    request: HttpRequest, status_code: int, *, detail: str | None = None
) -> HttpResponse:
    body = problem_body(request, status_code, detail=detail)
    return HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def database_outage_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    body, headers = database_outage_problem(request, exc)
    response = HttpResponse(json.dumps(body), status=503, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in headers.items():
        response[name] = value
    return response


def _note_database_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception receiver: remember that this request's 500 is a database outage.

    Django turns an exception raised inside a middleware into a 500 response right at that
    middleware's boundary (convert_exception_to_response), so the middlewares around it
    only ever see the response. This signal is sent there, with the exception current.
    """
    exc = sys.exc_info()[1]
    if request is not None and is_database_outage(exc):
        setattr(request, _DATABASE_OUTAGE_ATTRIBUTE, exc)


class ProblemDetailsMiddleware:
    """Rewrite error responses produced outside DRF into problem+json.

    Covers unknown paths (404), Django-level 400/403/405 and unhandled exceptions (500,
    logged here with the traceback; the client gets the request id, never the traceback
    unless DEBUG is on).

    A database outage is a 503 `database_unavailable` with Retry-After on every path (the
    admin's too), whether the view raised it (process_exception) or a middleware inside
    this one did (sessions, authentication, messages: see `_note_database_outage`). Keep
    this middleware outside every middleware that may touch the database.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        got_request_exception.connect(
            _note_database_outage, dispatch_uid="ecommerce.api.middleware.database_outage"
        )

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400:
            return response
        outage = getattr(request, _DATABASE_OUTAGE_ATTRIBUTE, None)
        if outage is not None and response.status_code == 500:
            return database_outage_response(request, outage)
        if is_problem_path(request.path_info) and not response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            return self._as_problem(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return database_outage_response(request, exception)
        if not is_problem_path(request.path_info) or isinstance(exception, SuspiciousOperation):
            # A request Django refuses (too many query fields, a bad Host read in a view...):
            # Django answers 400 and logs it as a security event; __call__ makes it a problem.
            return None
        logger.exception(
            "unhandled_exception",
            path=request.path_info,
            method=request.method,
            exc_type=type(exception).__name__,
        )
        detail = (
            f"{type(exception).__name__}: {exception}"
            if settings.DEBUG
            else "An unexpected error occurred. Quote the request_id when reporting it."
        )
        response = problem_response(request, 500, detail=detail)
        response._has_been_logged = True  # type: ignore[attr-defined]  # logged just above
        return response

    @staticmethod
    def _as_problem(request: HttpRequest, response: HttpResponseBase) -> HttpResponse:
        detail = None
        if response.status_code == 404:
            detail = f"No resource at {request.path_info}."
        elif response.status_code == 405:
            detail = f"Method {request.method} is not allowed here."
        problem = problem_response(request, response.status_code, detail=detail)
        for header in _KEPT_HEADERS:
            if header in response:
                problem[header] = response[header]
        return problem
