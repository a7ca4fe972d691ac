"""X-Request-ID: a sane one is kept, anything else replaced; returned and in every log line."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.ecommerce.helpers import ERROR_URLS, HEX_ID, LogLines, problem

pytestmark = pytest.mark.urls(ERROR_URLS)


def view_lines(log_lines: LogLines) -> list[dict[str, Any]]:
    """The lines the test views wrote (a health check thread of an earlier test may log too)."""
    return [line for line in log_lines() if line["logger"].startswith("tests.ecommerce.")]


@pytest.mark.parametrize(
    "request_id",
    [
        "abc-123",
        "req_01HF8ZK3QX",
        "6f1c2a9e-3b1d-4c7e-9a0f-2d8e4b6c1a7f",
        "Root=1-5759e988/bd862e3f:x+y@edge.example",
        "a" * 128,
    ],
)
def test_sane_request_id_is_echoed(client: Client, request_id: str) -> None:
    response = client.get("/api/test/get-only", HTTP_X_REQUEST_ID=request_id)

    assert response["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        "a" * 129,
        "abc def",
        "<script>alert(1)</script>",
        "abc\n",
        "abc\r\nSet-Cookie: x=1",
        "-starts-with-a-dash",
        "café",
        "",
    ],
)
def test_insane_request_id_is_replaced_by_a_fresh_one(client: Client, request_id: str) -> None:
    response = client.get("/api/test/get-only", HTTP_X_REQUEST_ID=request_id)

    assert re.fullmatch(HEX_ID, response["X-Request-ID"])


def test_absent_request_id_is_generated_fresh_for_each_request(client: Client) -> None:
    first = client.get("/api/test/get-only")["X-Request-ID"]
    second = client.get("/api/test/get-only")["X-Request-ID"]

    assert re.fullmatch(HEX_ID, first)
    assert re.fullmatch(HEX_ID, second)
    assert first != second


@pytest.mark.parametrize("path", ["/health/live", "/nope", "/admin/login/"])
def test_request_id_is_returned_outside_the_api_too(client: Client, path: str) -> None:
    response = client.get(path, HTTP_X_REQUEST_ID="outside-1")

    assert response["X-Request-ID"] == "outside-1"


def test_request_id_is_in_the_problem_body(client: Client) -> None:
    response = client.get("/api/nope", HTTP_X_REQUEST_ID="problem-1")

    assert problem(response, 404)["request_id"] == "problem-1"


def test_request_id_is_in_every_log_line_of_the_request(
    client: Client, log_lines: LogLines
) -> None:
    client.get("/api/test/logging", HTTP_X_REQUEST_ID="log-1")

    lines = {line["logger"]: line for line in view_lines(log_lines)}
    assert lines["tests.ecommerce.error_urls"]["event"] == "test_view_reached"
    assert lines["tests.ecommerce.error_urls"]["request_id"] == "log-1"
    # A plain stdlib logger goes through the same chain and gets the id too.
    assert lines["tests.ecommerce.stdlib"]["event"] == "plain stdlib line"
    assert lines["tests.ecommerce.stdlib"]["request_id"] == "log-1"


def test_generated_request_id_is_the_one_in_the_log_lines(
    client: Client, log_lines: LogLines
) -> None:
    response = client.get("/api/test/logging")

    assert [line["request_id"] for line in view_lines(log_lines)] == [response["X-Request-ID"]] * 2


def test_a_request_never_logs_the_previous_requests_id(client: Client, log_lines: LogLines) -> None:
    client.get("/api/test/logging", HTTP_X_REQUEST_ID="first")
    client.get("/api/test/logging", HTTP_X_REQUEST_ID="second")

    assert [line["request_id"] for line in view_lines(log_lines)] == [
        "first",
        "first",
        "second",
        "second",
    ]
