"""No input is a 500: every class of bad input, on every operation of the published schema.

The operations are walked from the OpenAPI document, so an endpoint added tomorrow is
walked too. Each class found in the wild is here: digits that `str.isdigit()` accepts and
`int()` refuses (or reads), integers past the columns' range, NUL (which PostgreSQL
refuses), malformed UUIDs, numbers and time zones past PostgreSQL's range, empty values,
and JSON nested past the parser's limit. Malformed addresses are 404s, malformed query
parameters and bodies 400s, all problem+json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from rest_framework.test import APIClient

from apps.users.models import User
from ecommerce.api.parsers import JSON_MAX_DEPTH
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")

BAD_PATH_VALUES = {
    "superscript digit": "%C2%B2",
    "arabic-indic digits": "%D9%A1%D9%A2",
    "bigint max + 1": str(2**63),
    "2**64": str(2**64),
    "twenty digits": "9" * 20,
    "zero": "0",
    "negative": "-1",
    "NUL": "%00",
    "NUL inside": "a%00b",
    "exponent": "1e3",
    "malformed uuid": "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    "uuid with braces": "%7B7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f%7D",
}
BAD_QUERY_VALUES = {
    "superscript digit": "²",
    "arabic-indic digits": "١٢",
    "bigint max + 1": str(2**63),
    "bigint min - 1": str(-(2**63) - 1),
    "NUL": "\x00",
    "NUL inside": "a\x00b",
    "numeric past PostgreSQL": "1e999999",
    "negative numeric past PostgreSQL": "-1e999999",
    "tiny numeric past PostgreSQL": "1e-999999",
    "NaN": "NaN",
    "empty": "",
    "offset past PostgreSQL": "0231-07-16T23:19:08+22:45",
    "instant before year 1": "0001-01-01T00:00:00+01:00",
}


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    document: dict[str, Any] = json.loads(response.content)
    return document


@pytest.fixture
def admin(client_for: Callable[[Any], APIClient]) -> APIClient:
    make_product(sku="TEE", stock=5)
    return client_for(UserFactory(roles=[Role.ADMIN]))


def a_visible_order() -> Any:
    """An order the admin sees: its returns and refunds lists take query parameters."""
    from apps.orders import services
    from tests.orders.factories import draft_line, order_draft

    variant = make_product(stock=1).variant
    order, _ = services.create_order(
        draft=order_draft([draft_line(variant, 1, net="10.00")]), user=UserFactory()
    )
    return order


def assert_problem(response: Any, *statuses: int, where: str = "") -> dict[str, Any]:
    assert response.status_code in statuses, (where, response.status_code, response.content[:300])
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    return body


def _free_text(parameter: dict[str, Any]) -> bool:
    schema = parameter["schema"]
    return schema.get("type") == "string" and not {"pattern", "enum", "format"} & set(schema)


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_PATH_VALUES.values(), ids=BAD_PATH_VALUES.keys())
def test_a_malformed_id_in_any_address_is_a_404(
    schema: dict[str, Any], admin: APIClient, value: str
) -> None:
    walked = 0
    for path, method, operation in operations(schema):
        if "{" not in path:
            continue
        head, _, tail = path.partition("{")
        name = tail.partition("}")[0]
        pattern = next(p for p in operation["parameters"] if p["name"] == name)["schema"]
        if re.fullmatch(pattern.get("pattern", "^$")[1:-1], unquote(value)):
            continue  # a valid name (a slug may be "0"): not a malformed address
        url = head + value + tail.partition("}")[2]
        response = getattr(admin, method)(url, {}, format="json")
        body = assert_problem(response, 404)
        assert body["instance"] == response.wsgi_request.path
        walked += 1
    assert walked >= 10


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["TEE", "NOPE"])
def test_options_on_any_address_is_never_a_5xx(
    schema: dict[str, Any], admin: APIClient, sku: str
) -> None:
    """DRF's OPTIONS describes the writes a staff member may make, and so looks the object
    up its own way (`get_object`): on an existing address and a missing one."""
    walked = 0
    for path in schema["paths"]:
        url = path.replace("{sku}", sku).replace("{slug}", "none").replace("{id}", "1")
        url = url.replace("{public_id}", "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f")
        url = url.replace("{media_id}", "1")
        response = admin.options(url)
        if response.status_code != 200:
            assert_problem(response, 401, 403, 404, where=f"OPTIONS {url}")
        walked += 1
    assert walked >= 30


# A well-formed value of every query parameter that some list requires.
VALID_REQUIRED_QUERY = {"country": "DE"}


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_QUERY_VALUES.values(), ids=BAD_QUERY_VALUES.keys())
def test_a_malformed_query_parameter_of_any_list_is_a_400(
    schema: dict[str, Any], admin: APIClient, value: str
) -> None:
    walked = 0
    order = a_visible_order()
    for path, method, operation in operations(schema):
        url = path.replace("{sku}", "TEE")
        url = url.replace("{order_id}", str(order.public_id)).replace(
            "{public_id}", str(order.public_id)
        )
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        # The others well-formed, so that only the one under test can be refused.
        required = {p["name"]: VALID_REQUIRED_QUERY[p["name"]] for p in query if p.get("required")}
        for parameter in query:
            response = getattr(admin, method)(url, {**required, parameter["name"]: value})
            where = f"{method.upper()} {path}?{parameter['name']}={value!r}"
            schema_type = parameter["schema"].get("type")
            strict = schema_type in ("integer", "boolean") or "enum" in parameter["schema"]
            if not strict:
                # A number, a date-time, a name or a search: it may be well-formed (an
                # offset of +22:45 is ISO 8601); it is never a 5xx.
                if response.status_code != 200:
                    assert_problem(response, 400, where=where)
                continue
            if parameter["name"] == "page" and value == str(2**63):
                assert_problem(response, 404)  # a number, past the last page
                continue
            body = assert_problem(response, 400, where=where)
            assert {error["pointer"] for error in body["errors"]} == {f"#/{parameter['name']}"}, (
                where
            )
            walked += 1
    assert walked >= 8


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [_nested(JSON_MAX_DEPTH + 1), _nested(100_000), '{"a":' * 50_000 + "1" + "}" * 50_000],
    ids=["one level too deep", "100000 arrays deep", "50000 objects deep"],
)
def test_json_nested_past_the_limit_is_a_400_on_every_body(
    schema: dict[str, Any], admin: APIClient, body: str
) -> None:
    walked = 0
    for path, method, operation in operations(schema):
        if "requestBody" not in operation or "{" in path:
            continue
        response = admin.generic(method.upper(), path, body, content_type="application/json")
        problem = assert_problem(response, 400)
        assert problem["detail"] == f"Malformed JSON: nested deeper than {JSON_MAX_DEPTH} levels."
        walked += 1
    assert walked >= 6


@pytest.mark.django_db
def test_json_at_the_depth_limit_is_parsed(admin: APIClient) -> None:
    deep = "[" * (JSON_MAX_DEPTH - 1) + "]" * (JSON_MAX_DEPTH - 1)
    response = admin.post("/api/orders", f'{{"items": {deep}}}', content_type="application/json")

    problem = assert_problem(response, 400)
    assert problem["code"] == "validation_error"  # parsed, then refused by the serializer


BAD_BODY_VALUES = {
    "bigint max + 1": 2**63,
    "2**64": 2**64,
    "superscript digit": "²",
    "arabic-indic digits": "١٢",
    "NUL": "\x00",
    "NUL inside": "a\x00b",
    "huge float": 1e308,
}


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_BODY_VALUES.values(), ids=BAD_BODY_VALUES.keys())
def test_a_bad_value_in_any_body_field_is_never_a_5xx(
    schema: dict[str, Any], admin: APIClient, value: Any, settings: Any
) -> None:
    # One caller walks every field of every operation: far more writes than a minute's
    # limit, and a 429 would hide what the handler does with the value.
    settings.RATE_LIMIT_ENABLED = False
    components = schema["components"]["schemas"]
    walked = 0
    for path, method, operation in operations(schema):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        url = path.replace("{sku}", "TEE").replace("{slug}", "none").replace("{id}", "1")
        url = url.replace("{public_id}", "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f")
        request = components[content["schema"]["$ref"].rsplit("/", 1)[1]]
        for field in request["properties"]:
            response = getattr(admin, method)(url, {field: value}, format="json")
            # Text may well be "²"; a value is taken or refused, never a 5xx. Refused:
            # 400, or 401 (not a token), 404 (the address names nothing), 409/422.
            if response.status_code >= 300:
                assert_problem(response, 400, 401, 404, 409, 422, where=f"{method} {path}")
            walked += 1
    assert walked >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_BODY_VALUES.values(), ids=BAD_BODY_VALUES.keys())
@pytest.mark.parametrize("field", ["id", "quantity"])
def test_a_bad_id_or_quantity_in_an_order_line_is_a_400(
    admin: APIClient, field: str, value: Any
) -> None:
    line = {"id": "TEE", "quantity": 1, field: value}
    response = admin.post(
        "/api/orders", {"items": [line], "payment_token": "tok_success"}, format="json"
    )

    body = assert_problem(response, 400)
    assert [error["pointer"] for error in body["errors"]] == [f"#/items/0/{field}"]


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["json", "form"])
@pytest.mark.parametrize("password", ["", " "])
def test_an_empty_password_is_refused_not_taken_as_absent(
    api_client: APIClient, content_type: str, password: str
) -> None:
    body = {"name": "Ann", "email": "ann@example.com", "password": password}
    if content_type == "json":
        response = api_client.post("/api/users", body, format="json")
    else:
        form = "name=Ann&email=ann%40example.com&password=" + password.replace(" ", "+")
        response = api_client.post(
            "/api/users", form, content_type="application/x-www-form-urlencoded"
        )

    problem = assert_problem(response, 400)
    assert [error["pointer"] for error in problem["errors"]] == ["#/password"]
    assert not User.objects.filter(email="ann@example.com").exists()
