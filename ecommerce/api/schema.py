"""OpenAPI: the problem+json error shape, the errors each operation can answer, rate headers.

`AutoSchema` (DEFAULT_SCHEMA_CLASS) adds to every operation the problem+json responses
that the gateway itself produces, so views only declare their own domain errors:
- 400 for operations with a request body, and lists (query parameters);
- 401 when a permission other than AllowAny applies, 403 when a role is needed;
- 404 on paths with parameters, and on paginated lists (a page past the last);
- 413 and 415 for operations with a request body;
- 414 everywhere (answered by the HTTP server, before the application, as HTML);
- 429 wherever the rate limiter counts;
- 503 everywhere (the database is unavailable; or the limiter, for fail-closed scopes);
and documents `RateLimit-*` on every response of a limited operation, `Retry-After` on
429 and 503. Views add the rest with `problems(409, 422, ...)` in `extend_schema`.

Request bodies are published as `application/json` only: the server also reads forms
and JSON under any label, but a schema that lists each body twice makes client
generators emit form encoders that cannot carry nested bodies. Each problem response
declares the extension members its problem types carry (`shortfalls`, `key`, ...),
inferred from the example errors it documents. Path parameters that are ids or UUIDs
are typed from the route patterns in `ecommerce.api.identifiers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeAlias

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated

from ecommerce.api import identifiers
from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE, problem_exception_handler, status_title
from ecommerce.api.parsers import PayloadTooLarge
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
    404: "Nothing at this address, or nothing the caller may see (or no such page).",
    413: "The request body is larger than the server accepts.",
    415: "The request body's Content-Type is not one the server reads.",
    429: "A rate limit refused the request; see Retry-After.",
    503: "A dependency is unavailable (the database; or rate limiting, where it fails "
    "closed); see Retry-After.",
}
# Request bodies the schema publishes (the server reads more; see the module docstring).
REQUEST_MEDIA_TYPES = ["application/json"]
# The path parameter schemas of the route patterns the API uses for ids and UUIDs.
PATH_PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    f"^{identifiers.ID_PATTERN}$": identifiers.ID_SCHEMA,
    f"^{identifiers.UUID_PATTERN}$": identifiers.UUID_SCHEMA,
}
URI_TOO_LONG: dict[str, Any] = {
    "description": "The request line is longer than the HTTP server accepts (answered by "
    "the server in HTML, before the API sees the request).",
    "content": {"text/html": {"schema": {"type": "string"}}},
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


class DatabaseUnavailable(APIException):
    """503: the database cannot serve the request now (it answers with Retry-After)."""

    status_code = 503
    default_code = "database_unavailable"
    default_detail = "The database is unavailable. Try again in 5 seconds."


def _generic_errors(status_code: int, scope: str) -> list[Exception]:
    """The errors the gateway raises for `status_code`, to render examples from."""
    generic: dict[int, Callable[[], list[Exception]]] = {
        400: lambda: [ValidationError({"email": ["Enter a valid email address."]})],
        401: lambda: [exceptions.NotAuthenticated()],
        403: lambda: [exceptions.PermissionDenied()],
        404: lambda: [exceptions.NotFound()],
        413: lambda: [PayloadTooLarge("The request body exceeds 1048576 bytes.")],
        415: lambda: [exceptions.UnsupportedMediaType("text/plain")],
        429: lambda: [
            RateLimited(
                scope=scope, usage=Usage(limit=10, count=11, window_seconds=60, reset_seconds=42)
            )
        ],
        503: lambda: (
            [DatabaseUnavailable()]
            + (
                [RateLimitUnavailable(scope=scope)]
                if scope in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES
                else []
            )
        ),
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


STANDARD_MEMBERS = frozenset(ProblemSerializer().fields) | {"errors"}


def example_schema(value: Any) -> dict[str, Any]:
    """A JSON schema for the shape of `value` (an example extension member)."""
    if value is None:
        return {"nullable": True}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array", "items": example_schema(value[0]) if value else {}}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {key: example_schema(item) for key, item in value.items()},
            "required": sorted(value),
        }
    raise TypeError(f"no JSON schema for {value!r}")


class ProblemResponse(OpenApiResponse):
    """A problem+json response, with the extension members its problem types carry."""

    def __init__(self, *, extra_members: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_members = extra_members


def problem_response(*errors: DomainError | APIException, description: str) -> OpenApiResponse:
    """One problem+json response with an example per error, declaring their extra members."""
    examples = []
    extra_members: dict[str, Any] = {}
    for error in errors:
        body = problem_example(error)
        examples.append(OpenApiExample(f"{body['status']} {body['code']}", value=body))
        for key, value in body.items():
            if key not in STANDARD_MEMBERS:
                extra_members.setdefault(key, example_schema(value))
    return ProblemResponse(
        response=ProblemSerializer,
        description=description,
        examples=examples,
        extra_members=extra_members,
    )


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
            errors = _generic_errors(status_code, scope) if status_code in MEANINGS else []  # type: ignore[assignment]
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


def text_pattern(field: serializers.CharField) -> str:
    """The pattern of what a CharField accepts: DRF refuses NUL in text, and a blank value
    (after trimming whitespace) unless the field allows it."""
    if field.allow_blank or not field.trim_whitespace:
        return r"^[^\u0000]*$"
    return r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def _merge_problem_schemas(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One problem schema declaring the extension members of both."""
    extra: dict[str, Any] = {}
    base = first
    for schema in (first, second):
        if "allOf" in schema:
            base = schema["allOf"][0]
            extra.update(schema["allOf"][1]["properties"])
    if not extra:
        return first
    return {"allOf": [base, {"type": "object", "properties": extra}]}


BLANK_OPTION = {"type": "string", "maxLength": 0}


def _without_redundant_blank(schema: dict[str, Any]) -> dict[str, Any]:
    """Undo drf-spectacular's `oneOf: [<text>, <blank>]` where <text> accepts "" already.

    For a blank-allowed field with a pattern it offers "" as a second option; when the
    pattern matches "" too, "" matches both options and so, by `oneOf`, neither: a strict
    validator refuses the very value the field accepts.
    """
    options = schema.get("oneOf")
    if not (isinstance(options, list) and len(options) == 2 and options[1] == BLANK_OPTION):
        return schema
    text = options[0]
    if text.get("minLength", 0) > 0 or "format" in text:
        return schema
    pattern = text.get("pattern")
    if pattern is not None and re.search(pattern, "") is None:
        return schema
    merged = {key: value for key, value in schema.items() if key != "oneOf"}
    merged.update(text)
    return merged


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

    def map_parsers(self) -> list[Any]:
        return list(REQUEST_MEDIA_TYPES)

    def _resolve_path_parameters(self, variables: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            pattern = parameter.get("schema", {}).get("pattern")
            if pattern in PATH_PARAMETER_SCHEMAS:
                parameter["schema"] = dict(PATH_PARAMETER_SCHEMAS[pattern])
        return parameters

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        """drf-spectacular's mapping plus the constraints DRF enforces that it leaves out."""
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if not isinstance(schema, dict) or "$ref" in schema:
            return schema
        if isinstance(field, serializers.ListSerializer | serializers.ListField):
            if not getattr(field, "allow_empty", True):
                schema.setdefault("minItems", max(1, getattr(field, "min_length", None) or 0))
            if getattr(field, "max_length", None) is not None:
                schema.setdefault("maxItems", field.max_length)
        elif (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & set(schema)
            # A slug's or regex field's own pattern says more, and drf-spectacular adds it
            # from the validator only where no pattern is set yet.
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            schema["pattern"] = text_pattern(field)
        return schema

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)
        redundant = _without_redundant_blank(schema)
        if redundant is not schema:
            schema.clear()
            schema.update(redundant)

    def _has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH") and bool(self.get_request_serializer())

    def _paginated(self) -> bool:
        return self._is_list_view() and self._get_paginator() is not None

    def implied_error_statuses(self) -> list[int]:
        """The problem statuses the gateway can answer for this operation."""
        statuses: list[int] = []
        has_body = self._has_body()
        if has_body or self._is_list_view():
            statuses.append(400)
        permissions = self._permissions()
        if any(not isinstance(p, AllowAny) for p in permissions):
            statuses.append(401)
        if any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions):
            statuses.append(403)
        if "{" in self.path or self._paginated():
            statuses.append(404)
        if has_body:
            statuses += [413, 415]
        if self._rate_limited():
            statuses.append(429)
        statuses.append(503)
        return statuses

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: Any,
        media_types: Any = None,
        direction: Any = "response",
    ) -> dict[str, Any]:
        response: dict[str, Any] = super()._get_response_for_code(
            serializer, status_code, media_types, direction
        )
        extra = getattr(serializer, "extra_members", None)
        if extra:
            for content in response.get("content", {}).values():
                content["schema"] = {
                    "allOf": [content["schema"], {"type": "object", "properties": extra}]
                }
        return response

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
                declared_schema = content["schema"]
                implied_schema = implied["content"][media_type]["schema"]
                content["schema"] = _merge_problem_schemas(declared_schema, implied_schema)
        for response in responses.values():
            problem = response.get("content", {}).get(PROBLEM_CONTENT_TYPE, {})
            for example in problem.get("examples", {}).values():
                example["value"] = {**example["value"], "instance": self.path}
        responses.setdefault("414", URI_TOO_LONG)
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
