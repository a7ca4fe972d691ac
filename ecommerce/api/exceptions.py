"""RFC 9457 problem details: the one place where errors become HTTP responses.

`problem_exception_handler` covers everything raised inside DRF views;
`ecommerce.api.middleware.ProblemDetailsMiddleware` covers the rest (unknown paths, errors
raised outside DRF, unhandled exceptions). Both build bodies with `problem_body`.

A database that cannot be reached is an outage, not a bug: wherever it surfaces (a view,
authentication, a middleware), the answer is 503 `database_unavailable` with Retry-After,
so clients and load balancers back off and retry instead of reporting a server error.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback

from ecommerce import errors
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# What Django raises when PostgreSQL cannot serve a request now: connection refused, lost
# or timed out, the server shutting down, a cancelled statement, a deadlock victim. All of
# them may succeed on a retry. IntegrityError, DataError, ProgrammingError stay 500 (bugs).
DATABASE_OUTAGE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

# Domain error kinds to status codes: the only HTTP knowledge about domain errors.
DOMAIN_ERROR_STATUS: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.InvalidInput, status.HTTP_400_BAD_REQUEST),
    (errors.Forbidden, status.HTTP_403_FORBIDDEN),
    (errors.NotFound, status.HTTP_404_NOT_FOUND),
    (errors.Conflict, status.HTTP_409_CONFLICT),
    (errors.Unprocessable, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (errors.Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
)

# Stable codes for plain HTTP errors that carry no code of their own.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "server_error",
    503: "unavailable",
}


def status_title(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def problem_body(
    request: HttpRequest | None,
    status_code: int,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 body; `code` and `request_id` are extension members."""
    code = code or STATUS_CODES.get(status_code, "error")
    body: dict[str, Any] = {
        "type": f"{settings.PROBLEM_TYPE_BASE_URI}{code.replace('_', '-')}",
        "title": title or status_title(status_code),
        "status": status_code,
        "detail": detail or title or status_title(status_code),
        "code": code,
    }
    if request is not None:
        body["instance"] = request.path
        request_id = getattr(request, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    if extra:
        for key, value in extra.items():
            body.setdefault(key, value)
    return body


def is_database_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, DATABASE_OUTAGE_ERRORS)


def database_outage_problem(
    request: HttpRequest | None, exc: BaseException
) -> tuple[dict[str, Any], dict[str, str]]:
    """The 503 body and headers for a request the database could not serve, logged as a
    warning (an outage, not a bug: no traceback)."""
    retry_after = settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS
    logger.warning(
        "database_unavailable",
        path=getattr(request, "path_info", None),
        error=f"{type(exc).__name__}: {exc}".strip()[:200],
    )
    body = problem_body(
        request,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        code="database_unavailable",
        title="Service Unavailable",
        detail=f"The database is unavailable. Try again in {retry_after} seconds.",
    )
    return body, {"Retry-After": str(retry_after)}


def _pointer(path: list[str]) -> str:
    # RFC 6901 §3: "~" and "/" inside a key are escaped, "~" first.
    return "#" + "".join(f"/{part.replace('~', '~0').replace('/', '~1')}" for part in path)


def flatten_errors(detail: Any, path: list[str] | None = None) -> list[dict[str, str]]:
    """Turn DRF's nested error detail into `[{pointer, detail, code}]` (RFC 9457 §3)."""
    path = path or []
    if isinstance(detail, dict):
        flat: list[dict[str, str]] = []
        for key, value in detail.items():
            sub = path if key in ("non_field_errors", "__all__") else [*path, str(key)]
            flat.extend(flatten_errors(value, sub))
        return flat
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [
                {
                    "pointer": _pointer(path),
                    "detail": str(item),
                    "code": getattr(item, "code", None) or "invalid",
                }
                for item in detail
            ]
        flat = []
        for index, item in enumerate(detail):
            flat.extend(flatten_errors(item, [*path, str(index)]))
        return flat
    return [
        {
            "pointer": _pointer(path),
            "detail": str(detail),
            "code": getattr(detail, "code", None) or "invalid",
        }
    ]


def _api_exception_detail(exc: exceptions.APIException) -> tuple[str, str | None]:
    """Return the human detail and code of an APIException, whatever shape it has."""
    detail = exc.detail
    if isinstance(detail, dict):  # SimpleJWT: {"detail": ..., "code": ..., "messages": [...]}
        message = detail.get("detail")
        code = detail.get("code")
        return (str(message) if message else str(exc.default_detail)), (str(code) if code else None)
    if isinstance(detail, list):
        return "; ".join(str(item) for item in detail), None
    return str(detail), getattr(detail, "code", None)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error becomes application/problem+json.

    Returns None for unexpected exceptions so they propagate to the middleware, which logs
    them and answers 500. A database outage (DATABASE_OUTAGE_ERRORS) is a 503.
    """
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    headers: dict[str, str] = {}

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))

    if isinstance(exc, errors.DomainError):
        status_code = next(
            (code for kind, code in DOMAIN_ERROR_STATUS if isinstance(exc, kind)),
            status.HTTP_400_BAD_REQUEST,
        )
        body = problem_body(
            django_request,
            status_code,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            extra=exc.extra,
        )
    elif isinstance(exc, exceptions.ValidationError):
        status_code = exc.status_code
        body = problem_body(
            django_request,
            status_code,
            code="validation_error",
            title="Invalid request",
            detail="One or more fields are invalid.",
            errors=flatten_errors(exc.detail),
        )
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        detail, code = _api_exception_detail(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        code = code if code not in (None, "error") else STATUS_CODES.get(status_code)
        body = problem_body(django_request, status_code, code=code, detail=detail)
    elif is_database_outage(exc):
        status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        body, headers = database_outage_problem(django_request, exc)
    else:
        return None

    set_rollback()
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
