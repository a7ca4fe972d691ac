"""Every 4xx and 5xx under /api/ and /health is application/problem+json (RFC 9457)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.ecommerce.helpers import ERROR_URLS, HEX_ID, LogLines, problem
from tests.users.factories import UserFactory

pytestmark = pytest.mark.urls(ERROR_URLS)

BASE = "urn:ecommerce:problem:"


def expected(
    response: Any, *, status: int, code: str, title: str, detail: str, **members: Any
) -> dict[str, Any]:
    """The full body a problem response must have: standard members, then extensions."""
    return {
        "type": f"{BASE}{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": response.wsgi_request.path,
        "request_id": response["X-Request-ID"],
        **members,
    }


# --- 400 ----------------------------------------------------------------------------------


def test_invalid_fields_are_400_with_one_error_per_field(client: Client) -> None:
    response = client.post(
        "/api/test/validate",
        {"email": "nope", "name": "Ann", "items": [{"quantity": 1}, {"quantity": 0}]},
        content_type="application/json",
    )

    assert problem(response, 400) == expected(
        response,
        status=400,
        code="validation_error",
        title="Invalid request",
        detail="One or more fields are invalid.",
        errors=[
            {"pointer": "#/email", "detail": "Enter a valid email address.", "code": "invalid"},
            {
                "pointer": "#/items/1/quantity",
                "detail": "Ensure this value is greater than or equal to 1.",
                "code": "min_value",
            },
        ],
    )


def test_missing_fields_are_each_reported_as_required(client: Client) -> None:
    response = client.post("/api/test/validate", {}, content_type="application/json")

    assert problem(response, 400)["errors"] == [
        {"pointer": "#/email", "detail": "This field is required.", "code": "required"},
        {"pointer": "#/name", "detail": "This field is required.", "code": "required"},
        {"pointer": "#/items", "detail": "This field is required.", "code": "required"},
    ]


def test_error_about_the_whole_body_points_at_the_document(client: Client) -> None:
    response = client.post(
        "/api/test/validate",
        {"email": "a@example.com", "name": "forbidden", "items": []},
        content_type="application/json",
    )

    assert problem(response, 400)["errors"] == [
        {"pointer": "#", "detail": "This name and email cannot go together.", "code": "invalid"}
    ]


def test_slash_and_tilde_in_a_key_are_escaped_in_the_pointer(client: Client) -> None:
    response = client.post(
        "/api/test/validate",
        {"email": "a@example.com", "name": "Ann", "items": [], "attributes": {"a/b~c": "x"}},
        content_type="application/json",
    )

    assert problem(response, 400)["errors"] == [
        {
            "pointer": "#/attributes/a~1b~0c",
            "detail": "A valid integer is required.",
            "code": "invalid",
        }
    ]


def test_django_validation_error_in_a_view_is_a_validation_problem(client: Client) -> None:
    response = client.get("/api/test/django-validation")

    assert problem(response, 400) == expected(
        response,
        status=400,
        code="validation_error",
        title="Invalid request",
        detail="One or more fields are invalid.",
        errors=[{"pointer": "#/email", "detail": "Use your work address.", "code": "invalid"}],
    )


def test_malformed_json_is_400_parse_error(client: Client) -> None:
    response = client.post("/api/test/echo", '{"name": ', content_type="application/json")

    assert problem(response, 400) == expected(
        response,
        status=400,
        code="parse_error",
        title="Bad Request",
        detail="Malformed JSON: Expecting value: line 1 column 10 (char 9)",
    )


def test_disallowed_host_under_api_is_400_problem(client: Client) -> None:
    response = client.get("/api/test/get-only", HTTP_HOST="evil.example")

    assert problem(response, 400) == expected(
        response, status=400, code="bad_request", title="Bad Request", detail="Bad Request"
    )


@pytest.mark.parametrize("path", ["/api/test/get-only", "/api/products"])
def test_too_many_query_fields_is_400_problem_not_500(client: Client, path: str) -> None:
    """Django refuses more than DATA_UPLOAD_MAX_NUMBER_FIELDS when a view reads the query."""
    response = client.get(path + "?" + "&".join(f"x{i}=1" for i in range(1001)))

    assert problem(response, 400) == expected(
        response, status=400, code="bad_request", title="Bad Request", detail="Bad Request"
    )


# --- 401, 403 -----------------------------------------------------------------------------


def test_missing_credentials_is_401_with_www_authenticate(client: Client) -> None:
    response = client.get("/api/test/support-only")

    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert problem(response, 401) == expected(
        response,
        status=401,
        code="not_authenticated",
        title="Unauthorized",
        detail="Authentication credentials were not provided.",
    )


def test_invalid_token_is_401_with_the_token_code(client: Client) -> None:
    response = client.get("/api/test/support-only", HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert problem(response, 401) == expected(
        response,
        status=401,
        code="token_not_valid",
        title="Unauthorized",
        detail="Given token not valid for any token type",
    )


@pytest.mark.django_db
def test_user_without_the_role_is_403(client_for: Any) -> None:
    customer = UserFactory(roles=["customer"])

    response = client_for(customer).get("/api/test/support-only")

    assert problem(response, 403) == expected(
        response,
        status=403,
        code="permission_denied",
        title="Forbidden",
        detail="You do not have permission to perform this action.",
    )


def test_django_permission_denied_is_403_without_its_internal_reason(client: Client) -> None:
    response = client.get("/api/test/django-permission-denied")

    assert problem(response, 403) == expected(
        response,
        status=403,
        code="permission_denied",
        title="Forbidden",
        detail="You do not have permission to perform this action.",
    )


# --- 404, 405, 406 ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/nope", "/api/nope/", "/api", "/api/", "/api/users/abc"])
def test_unknown_path_under_api_is_404_problem(client: Client, path: str) -> None:
    response = client.get(path)

    assert problem(response, 404) == expected(
        response, status=404, code="not_found", title="Not Found", detail=f"No resource at {path}."
    )


def test_http404_in_a_drf_view_is_404_without_its_internal_message(client: Client) -> None:
    response = client.get("/api/test/http404")

    assert problem(response, 404) == expected(
        response, status=404, code="not_found", title="Not Found", detail="Not found."
    )


def test_method_a_drf_view_lacks_is_405_with_allow(client: Client) -> None:
    response = client.delete("/api/test/get-only")

    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert problem(response, 405) == expected(
        response,
        status=405,
        code="method_not_allowed",
        title="Method Not Allowed",
        detail='Method "DELETE" not allowed.',
    )


def test_method_a_plain_django_view_lacks_is_405_with_allow(client: Client) -> None:
    response = client.post("/health")

    assert response["Allow"] == "GET, HEAD"
    assert problem(response, 405) == expected(
        response,
        status=405,
        code="method_not_allowed",
        title="Method Not Allowed",
        detail="Method POST is not allowed here.",
    )


def test_accept_html_on_an_api_view_is_406(client: Client) -> None:
    response = client.get("/api/test/get-only", HTTP_ACCEPT="text/html")

    assert problem(response, 406) == expected(
        response,
        status=406,
        code="not_acceptable",
        title="Not Acceptable",
        detail="Could not satisfy the request Accept header.",
    )


# --- Domain errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code", "title", "detail", "extra"),
    [
        (
            "invalid-input",
            400,
            "invalid_input",
            "Invalid input",
            "Quantity must be a multiple of 6.",
            {"multiple": 6},
        ),
        (
            "forbidden",
            403,
            "forbidden",
            "Forbidden",
            "Only the owner may do this.",
            {"owner_id": 7},
        ),
        ("not-found", 404, "not_found", "Not found", "No order 42.", {"order_id": 42}),
        (
            "conflict",
            409,
            "conflict",
            "Conflict",
            "The cart changed meanwhile.",
            {"current_version": 3},
        ),
        (
            "email-taken",
            409,
            "email_taken",
            "Email already registered",
            "a@example.com is taken.",
            {"email": "a@example.com"},
        ),
        (
            "unprocessable",
            422,
            "unprocessable",
            "Unprocessable request",
            "Idempotency key reused with another body.",
            {"idempotency_key": "k-1"},
        ),
        (
            "unavailable",
            503,
            "unavailable",
            "Service unavailable",
            "The payment provider is down.",
            {"provider": "acme"},
        ),
        # A DomainError of no known kind falls back to 400, detail defaulting to its title.
        ("plain", 400, "plain_refusal", "Plain refusal", "Plain refusal", {}),
    ],
)
def test_domain_error_maps_to_its_status_with_extra_members(
    client: Client,
    kind: str,
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: dict[str, Any],
) -> None:
    response = client.get(f"/api/test/domain/{kind}")

    assert problem(response, status) == expected(
        response, status=status, code=code, title=title, detail=detail, **extra
    )


def test_extra_members_never_overwrite_standard_members(client: Client) -> None:
    response = client.get("/api/test/domain/hijack")

    assert problem(response, 409) == expected(
        response, status=409, code="conflict", title="Conflict", detail="Real detail.", sku="A-1"
    )


# --- 413, 415, 429 ------------------------------------------------------------------------


def test_body_over_the_limit_is_413(client: Client, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 16

    response = client.post(
        "/api/test/echo", '{"name": "seventeen"}', content_type="application/json"
    )

    assert problem(response, 413) == expected(
        response,
        status=413,
        code="payload_too_large",
        title="Request Entity Too Large",
        detail="The request body exceeds 16 bytes.",
    )


def test_multipart_body_is_415(client: Client) -> None:
    response = client.post("/api/test/echo", {"name": "Ann"})  # the test client's multipart

    assert problem(response, 415) == expected(
        response,
        status=415,
        code="unsupported_media_type",
        title="Unsupported Media Type",
        detail='Unsupported media type "multipart/form-data; boundary=BoUnDaRyStRiNg" in request.',
    )


def test_throttled_is_429_with_retry_after(client: Client) -> None:
    response = client.get("/api/test/throttled")

    assert response["Retry-After"] == "7"
    assert problem(response, 429) == expected(
        response,
        status=429,
        code="throttled",
        title="Too Many Requests",
        detail="Request was throttled. Expected available in 7 seconds.",
    )


# --- 500 ----------------------------------------------------------------------------------


def test_unhandled_exception_is_500_without_internals(client: Client) -> None:
    response = client.get("/api/test/boom")

    assert problem(response, 500) == expected(
        response,
        status=500,
        code="server_error",
        title="Internal Server Error",
        detail="An unexpected error occurred. Quote the request_id when reporting it.",
    )
    assert b"hunter2" not in response.content
    assert b"RuntimeError" not in response.content
    assert b"Traceback" not in response.content


def test_unhandled_exception_is_logged_once_with_traceback_and_request_id(
    client: Client, log_lines: LogLines
) -> None:
    response = client.get("/api/test/boom", HTTP_X_REQUEST_ID="boom-1")

    [line] = [line for line in log_lines() if line["event"] == "unhandled_exception"]
    exception = line.pop("exception")
    line.pop("timestamp")
    assert line == {
        "event": "unhandled_exception",
        "path": "/api/test/boom",
        "method": "GET",
        "exc_type": "RuntimeError",
        "request_id": "boom-1",
        "level": "error",
        "logger": "ecommerce.api.middleware",
    }
    assert exception.startswith("Traceback (most recent call last):\n")
    assert exception.endswith("\nRuntimeError: database password is hunter2")
    assert problem(response, 500)["request_id"] == "boom-1"


def test_unhandled_exception_with_debug_on_names_the_exception(
    client: Client, settings: Any
) -> None:
    settings.DEBUG = True

    response = client.get("/api/test/boom")

    assert problem(response, 500)["detail"] == "RuntimeError: database password is hunter2"


# --- Outside the API ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/apiary/x", "/healthz", "/api-docs"])
def test_unknown_path_outside_the_api_keeps_djangos_404_page(client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Not Found</h1>" in response.content


def test_unknown_admin_path_keeps_the_admins_login_redirect(client: Client) -> None:
    response = client.get("/admin/nope")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/nope"


def test_unhandled_exception_outside_the_api_keeps_djangos_500_page() -> None:
    client = Client(raise_request_exception=False)

    response = client.get("/boom-page")

    assert response.status_code == 500
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Server Error (500)</h1>" in response.content
    assert re.fullmatch(HEX_ID, response["X-Request-ID"])


# --- 503: the database is down ------------------------------------------------------------

OUTAGE_URLS = "tests.ecommerce.outage_urls"
DATABASE_DOWN = "The database is unavailable. Try again in 5 seconds."


def database_down(response: Any) -> dict[str, Any]:
    return expected(
        response,
        status=503,
        code="database_unavailable",
        title="Service Unavailable",
        detail=DATABASE_DOWN,
    )


@pytest.fixture
def inner_middleware_reads_the_database(settings: Any) -> None:
    """A middleware inside the gateway's, where sessions and authentication sit."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("ecommerce.middleware.AdminAuthenticationMiddleware") + 1,
        "tests.ecommerce.outage_urls.DatabaseDownMiddleware",
    )
    settings.MIDDLEWARE = middleware


@pytest.mark.urls(OUTAGE_URLS)
@pytest.mark.parametrize("method", ["get", "post"])  # OperationalError, InterfaceError
def test_database_unreachable_in_a_view_is_503_with_retry_after(
    client: Client, method: str, log_lines: LogLines
) -> None:
    response = getattr(client, method)("/api/test/outage", HTTP_X_REQUEST_ID=f"db-{method}")

    assert problem(response, 503) == database_down(response)
    assert response["Retry-After"] == "5"
    [line] = [line for line in log_lines() if line["event"] == "database_unavailable"]
    assert (line["level"], line["path"], line["request_id"]) == (
        "warning",
        "/api/test/outage",
        f"db-{method}",
    )
    assert line["error"] == (
        'OperationalError: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?"
        if method == "get"
        else "InterfaceError: connection already closed"
    )
    assert not [line for line in log_lines() if line["event"] == "unhandled_exception"]


@pytest.mark.urls(OUTAGE_URLS)
def test_retry_after_of_a_database_outage_is_the_setting(client: Client, settings: Any) -> None:
    settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 12

    response = client.get("/api/test/outage")

    assert response["Retry-After"] == "12"
    assert problem(response, 503)["detail"] == (
        "The database is unavailable. Try again in 12 seconds."
    )


@pytest.mark.urls(OUTAGE_URLS)
def test_other_database_errors_stay_500(client: Client) -> None:
    """An IntegrityError reaching the gateway is a bug, not an outage."""
    client = Client(raise_request_exception=False)

    response = client.get("/api/test/integrity")

    assert problem(response, 500)["code"] == "server_error"
    assert "Retry-After" not in response


@pytest.mark.urls(OUTAGE_URLS)
def test_database_unreachable_in_a_page_outside_the_api_is_503_too(client: Client) -> None:
    response = client.get("/outage-page")

    assert problem(response, 503) == database_down(response)
    assert response["Retry-After"] == "5"


@pytest.mark.urls(OUTAGE_URLS)
@pytest.mark.usefixtures("inner_middleware_reads_the_database")
@pytest.mark.parametrize(
    "path", ["/api/test/fine/down-before", "/api/test/fine/down-after", "/admin-like/down-before"]
)
@pytest.mark.parametrize("debug", [False, True])
def test_database_unreachable_in_a_middleware_is_503_not_500(
    settings: Any, path: str, debug: bool
) -> None:
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)

    response = client.get(path)

    assert problem(response, 503) == database_down(response)
    assert response["Retry-After"] == "5"


def test_the_gateway_middleware_wraps_every_middleware_that_reads_the_database(
    settings: Any,
) -> None:
    """Errors inside it become 503s; one placed outside it would escape as a bare 500."""
    middleware = list(settings.MIDDLEWARE)
    gateway = middleware.index("ecommerce.api.middleware.ProblemDetailsMiddleware")
    for reads_the_database in (  # Django's, skipped for the API (ecommerce/middleware.py)
        "ecommerce.middleware.AdminSessionMiddleware",
        "ecommerce.middleware.AdminAuthenticationMiddleware",
        "ecommerce.middleware.AdminMessageMiddleware",
    ):
        assert middleware.index(reads_the_database) > gateway
