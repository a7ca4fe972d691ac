"""OpenAPI: the problem+json error shape, the errors each operation can answer, rate headers.

`AutoSchema` (DEFAULT_SCHEMA_CLASS) adds to every operation the problem+json responses
that the gateway itself produces, so views only declare their own domain errors:
- 400 for operations with a request body, and lists (query parameters);
- 401 when a permission other than AllowAny applies, 403 when a role is needed;
- 404 on paths with parameters;
- 429 wherever the rate limiter counts, and 503 for its fail-closed scopes;
and documents `RateLimit-*` on every response of a limited operation, `Retry-After` on
429 and 503. Views add the rest with `problems(409, 422, ...)` in `extend_schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from django.conf import settings
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated

from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE, problem_exception_handler, status_title
from ecommerce.api.ratelimit import (
    READS,
    RateLimited,
    RateLimitThrottle,
    RateLimitUnavailable,
    Usage,
    scope_of,
)
from ecommerce.errors import DomainError

REQUEST_ID = "4f0c2a9e8b7d4c1e9a6b3d2f1e0c9b8a"
# What each status means when the gateway itself answers it.
MEANINGS: dict[int, str] = {
    400: "The body or a query parameter is malformed or invalid (`errors` names each field).",
    401: "No valid access token.",
    403: "The caller's role does not allow this.",
    404: "Nothing at this address, or nothing the caller may see.",
    429: "A rate limit refused the request; see Retry-After.",
    503: "Rate limiting is unavailable and this scope fails closed; see Retry-After.",
}
Documented: TypeAlias = int | DomainError | APIException


class ProblemErrorSerializer(serializers.Serializer):
    """One invalid field of a 400 (RFC 9457 §3 extension member `errors`)."""

    pointer = serializers.CharField(help_text="JSON Pointer (RFC 6901) to the field: `#/email`.")
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. `invalid`.")


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem document (`application/problem+json`).

    Some problems carry more members with the data a client needs to recover, e.g.
    `shortfalls` on `out_of_stock`.
    """

    type = serializers.CharField(help_text="URI naming the problem kind; ends with `code`.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable name of the problem.")
    instance = serializers.CharField(help_text="The request path.")
    request_id = serializers.CharField(help_text="Equals the X-Request-ID response header.")
    errors = ProblemErrorSerializer(
        many=True, required=False, help_text="Each invalid field (400 only)."
    )


def _generic_error(status_code: int, scope: str) -> Exception:
    """The error the gateway raises for `status_code`, to render an example from."""
    generic: dict[int, Callable[[], Exception]] = {
        400: lambda: ValidationError({"email": ["Enter a valid email address."]}),
        401: exceptions.NotAuthenticated,
        403: exceptions.PermissionDenied,
        404: exceptions.NotFound,
        429: lambda: RateLimited(
            scope=scope, usage=Usage(limit=10, count=11, window_seconds=60, reset_seconds=42)
        ),
        503: lambda: RateLimitUnavailable(scope=scope),
    }
    return generic[status_code]()


def problem_example(error: DomainError | APIException, *, path: str = "/api/") -> dict[str, Any]:
    """The body the exception handler renders for `error`, with example request members."""
    response = problem_exception_handler(error, {})
    assert response is not None, f"{error!r} is not rendered as a problem"  # noqa: S101
    data: dict[str, Any] = dict(response.data)
    head = {key: data.pop(key) for key in ("type", "title", "status", "detail", "code")}
    return {**head, "instance": path, "request_id": REQUEST_ID, **data}


def _description(error: DomainError | APIException) -> str:
    doc = type(error).__doc__ if "__doc__" in vars(type(error)) else None
    summary = (doc or "").strip().splitlines()[0] if doc else ""
    title = getattr(error, "title", None) or str(getattr(error, "detail", ""))
    return f"`{error_code(error)}`: {summary or title}"


def error_code(error: DomainError | APIException) -> str:
    if isinstance(error, DomainError):
        return error.code
    codes = error.get_codes()
    return codes if isinstance(codes, str) else "validation_error"


def problem_response(*errors: DomainError | APIException, description: str) -> OpenApiResponse:
    """One problem+json response with an example per error."""
    examples = []
    for error in errors:
        body = problem_example(error)
        examples.append(OpenApiExample(f"{body['status']} {body['code']}", value=body))
    return OpenApiResponse(ProblemSerializer, description=description, examples=examples)


def _status_of(error: DomainError | APIException) -> int:
    response = problem_exception_handler(error, {})
    assert response is not None  # noqa: S101
    return int(response.status_code)


def problems(*documented: Documented, scope: str = READS) -> dict[tuple[int, str], OpenApiResponse]:
    """problem+json responses for `extend_schema(responses=...)`.

    Give statuses (`problems(409)`, generic wording) or example errors, rendered as the
    exception handler renders them: `problems(OutOfStock(shortfalls=...), 422)`. Errors
    with one status share one response, with an example each. `scope` names the rate
    limit scope in the examples of 429 and 503.
    """
    by_status: dict[int, list[DomainError | APIException]] = {}
    for item in documented:
        if isinstance(item, int):
            by_status.setdefault(item, [])
        else:
            by_status.setdefault(_status_of(item), []).append(item)
    responses: dict[tuple[int, str], OpenApiResponse] = {}
    for status_code, errors in sorted(by_status.items()):
        if errors:
            description = "; or ".join(_description(error) for error in errors)
        else:
            errors = [_generic_error(status_code, scope)] if status_code in MEANINGS else []
            description = MEANINGS.get(status_code, status_title(status_code))
        responses[(status_code, PROBLEM_CONTENT_TYPE)] = problem_response(
            *errors, description=description
        )
    return responses


def _integer_header(description: str) -> dict[str, Any]:
    return {"schema": {"type": "integer", "minimum": 0}, "description": description}


# Declared once under components/headers (by `add_header_components`, a postprocessing
# hook) and referenced from each response.
HEADER_COMPONENTS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": _integer_header("Requests allowed in the current window."),
    "RateLimit-Remaining": _integer_header("Requests left in the current window."),
    "RateLimit-Reset": _integer_header("Seconds until the current window ends."),
    "RateLimit-Policy": {
        "schema": {"type": "string", "example": "600;w=60"},
        "description": "The limit and its window in seconds (IETF RateLimit header draft).",
    },
    "Retry-After": _integer_header("Seconds to wait before trying again."),
}
RATE_LIMIT_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)


def add_header_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: declare the headers responses refer to."""
    result.setdefault("components", {})["headers"] = HEADER_COMPONENTS
    return result


def _refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema plus the gateway's errors and rate-limit headers."""

    def _permissions(self) -> list[Any]:
        try:
            return list(self.view.get_permissions())
        except Exception:  # a view whose permissions need a real request: assume protected
            return [IsAuthenticated()]

    def _rate_limited(self) -> bool:
        return any(
            isinstance(throttle, RateLimitThrottle) for throttle in self.view.get_throttles()
        )

    def implied_error_statuses(self) -> list[int]:
        """The problem statuses the gateway can answer for this operation."""
        statuses: list[int] = []
        has_body = self.method in ("POST", "PUT", "PATCH") and bool(self.get_request_serializer())
        if has_body or self._is_list_view():
            statuses.append(400)
        permissions = self._permissions()
        if any(not isinstance(p, AllowAny) for p in permissions):
            statuses.append(401)
        if any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions):
            statuses.append(403)
        if "{" in self.path:
            statuses.append(404)
        if self._rate_limited():
            statuses.append(429)
            if scope_of(self.view, self.method) in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES:
                statuses.append(503)
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        scope = scope_of(self.view, self.method)
        implied_problems = problems(*self.implied_error_statuses(), scope=scope)
        for (status_code, media_type), response in implied_problems.items():
            code = str(status_code)
            implied = self._get_response_for_code(response, code, [media_type], direction)
            declared = responses.get(code)
            if declared is None:
                responses[code] = implied
            elif media_type in declared.get("content", {}):
                # The view named its own errors for this status; the gateway's stay possible.
                content = declared["content"][media_type]
                content["examples"] = {
                    **content.get("examples", {}),
                    **implied["content"][media_type].get("examples", {}),
                }
                declared["description"] = f"{declared['description']}; or {response.description}"
        for response in responses.values():
            problem = response.get("content", {}).get(PROBLEM_CONTENT_TYPE, {})
            for example in problem.get("examples", {}).values():
                example["value"] = {**example["value"], "instance": self.path}
        return dict(sorted(responses.items()))

    def _get_response_headers_for_code(
        self, status_code: Any, direction: Any = "response"
    ) -> dict[str, Any]:
        headers: dict[str, Any] = super()._get_response_headers_for_code(status_code, direction)
        code = str(status_code)
        if code in ("429", "503"):
            headers = {**_refs("Retry-After"), **headers}
        # Authentication and permissions are checked before the limiter counts, so their
        # refusals carry no RateLimit-* headers (unless the view authenticates no one).
        counted = code != "503" and (
            code not in ("401", "403") or not self.view.get_authenticators()
        )
        if counted and self._rate_limited():
            headers = {**headers, **_refs(*RATE_LIMIT_HEADERS)}
        return headers
