"""Body parsing: JSON whatever the label claims, forms still forms, strict JSON, a size cap."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory

from tests.ecommerce.error_urls import EchoView
from tests.ecommerce.helpers import ERROR_URLS, problem

pytestmark = pytest.mark.urls(ERROR_URLS)

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "Ann", "email": "ann@example.com"}',
        ' \n{"name": "Ann", "email": "ann@example.com"}',
    ],
)
def test_json_object_labelled_as_form_is_parsed_as_json(client: Client, body: str) -> None:
    response = client.post("/api/test/echo", body, content_type=FORM)

    assert response.status_code == 200
    assert response.json() == {
        "kind": "json",
        "data": {"name": "Ann", "email": "ann@example.com"},
    }


def test_real_form_body_is_still_a_form(client: Client) -> None:
    response = client.post("/api/test/echo", "name=Jos%C3%A9&tag=a&tag=b", content_type=FORM)

    assert response.status_code == 200
    assert response.json() == {"kind": "form", "data": {"name": ["José"], "tag": ["a", "b"]}}


def test_json_array_labelled_as_form_stays_a_form(client: Client) -> None:
    response = client.post("/api/test/echo", "[1, 2]", content_type=FORM)

    assert response.json() == {"kind": "form", "data": {"[1, 2]": [""]}}


def test_broken_json_object_labelled_as_form_is_400(client: Client) -> None:
    response = client.post("/api/test/echo", '{"name": "Ann",}', content_type=FORM)

    body = problem(response, 400)
    assert body["code"] == "parse_error"
    assert body["detail"] == (
        "Malformed JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 16 (char 15)"
    )


def test_form_body_that_is_not_utf8_is_400(client: Client) -> None:
    response = client.post("/api/test/echo", b"name=Jos\xe9", content_type=FORM)

    body = problem(response, 400)
    assert body["code"] == "parse_error"
    assert body["detail"] == "The form body is not valid text."


def test_empty_content_type_is_parsed_as_json(client: Client) -> None:
    response = client.generic("POST", "/api/test/echo", '{"name": "Ann"}', content_type="")

    assert response.status_code == 200
    assert response.json() == {"kind": "json", "data": {"name": "Ann"}}


def test_absent_content_type_is_parsed_as_json() -> None:
    request = RequestFactory().generic("POST", "/api/test/echo", '{"name": "Ann"}')
    del request.META["CONTENT_TYPE"]  # as a WSGI server leaves it when the header is absent

    response = EchoView.as_view()(request)

    assert response.status_code == 200
    assert response.data == {"kind": "json", "data": {"name": "Ann"}}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("content_type", ["application/json", FORM])
def test_non_finite_numbers_are_refused(client: Client, constant: str, content_type: str) -> None:
    response = client.post("/api/test/echo", f'{{"price": {constant}}}', content_type=content_type)

    body = problem(response, 400)
    assert body["code"] == "parse_error"
    assert body["detail"] == f"Malformed JSON: {constant} is not valid JSON"


def test_json_that_is_not_utf8_is_400(client: Client) -> None:
    response = client.post(
        "/api/test/echo", b'{"name": "Jos\xe9"}', content_type="application/json"
    )

    body = problem(response, 400)
    assert body["code"] == "parse_error"
    assert body["detail"] == (
        "Malformed JSON: 'utf-8' codec can't decode byte 0xe9 in position 13: "
        "invalid continuation byte"
    )


def test_plain_text_body_is_415(client: Client) -> None:
    response = client.post("/api/test/echo", '{"name": "Ann"}', content_type="text/plain")

    body = problem(response, 415)
    assert body["detail"] == 'Unsupported media type "text/plain" in request.'


@pytest.mark.parametrize("content_type", ["application/json", FORM, ""])
def test_body_at_the_limit_is_accepted(client: Client, settings: Any, content_type: str) -> None:
    settings.API_MAX_BODY_BYTES = 16
    body = '{"name": "Anne"}'
    assert len(body) == 16

    response = client.generic("POST", "/api/test/echo", body, content_type=content_type)

    assert response.status_code == 200
    assert response.json() == {"kind": "json", "data": {"name": "Anne"}}


@pytest.mark.parametrize("content_type", ["application/json", FORM, ""])
def test_body_one_byte_over_the_limit_is_413(
    client: Client, settings: Any, content_type: str
) -> None:
    settings.API_MAX_BODY_BYTES = 16

    response = client.generic(
        "POST", "/api/test/echo", '{"name": "Annie"}', content_type=content_type
    )

    body = problem(response, 413)
    assert body["code"] == "payload_too_large"
    assert body["detail"] == "The request body exceeds 16 bytes."


def test_form_body_over_the_limit_is_413(client: Client, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 16

    response = client.post("/api/test/echo", "name=" + "a" * 12, content_type=FORM)

    assert problem(response, 413)["detail"] == "The request body exceeds 16 bytes."


def test_default_limit_is_one_mebibyte(client: Client) -> None:
    big = json.dumps({"blob": "x" * (1024 * 1024)})

    response = client.post("/api/test/echo", big, content_type="application/json")

    assert problem(response, 413)["detail"] == "The request body exceeds 1048576 bytes."
