"""The OpenAPI schema: valid without a single warning, complete, and true to the API.

Every operation must have its request and response schemas, its problem+json errors and an
example, and every example must validate against the schema it illustrates. The shapes
the views build by hand (orders, stock changes) must match the serializers that describe
them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.inventory.serializers import StockChangeOutputSerializer
from apps.orders.serializers import (
    OrderDetailOutputSerializer,
    OrderItemOutputSerializer,
    OrderOutputSerializer,
)
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document: dict[str, Any] = json.loads(response.content)
    return document


def operations(schema: dict[str, Any]) -> Iterator[Operation]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes "or null"."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@pytest.mark.slow
def test_the_schema_validates_without_a_single_warning(tmp_path: Any) -> None:
    """`manage.py spectacular --validate --fail-on-warn` in a fresh process (warnings are
    reported once per process, so an in-process run after another would hide them)."""
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "ecommerce.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")


def test_the_schema_names_the_api_its_auth_and_its_problem_shape(schema: dict[str, Any]) -> None:
    assert schema["info"]["title"] == "E-commerce API"
    assert {
        "/api/auth/token/",
        "/api/users/",
        "/api/products/{sku}/",
        "/api/orders/",
        "/api/orders/{public_id}/cancel/",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"] == {
        "jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "request_id",
    }
    assert set(schema["components"]["headers"]) == {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
        "Retry-After",
    }


def test_every_operation_has_schemas_errors_and_an_example(schema: dict[str, Any]) -> None:
    gaps = []
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        if len(successes) != 1:
            gaps.append(f"{where}: success responses {successes}")
            continue
        success = responses[successes[0]]
        examples = []
        for media in success.get("content", {}).values():
            if "schema" not in media:
                gaps.append(f"{where}: no response schema")
            examples += list(media.get("examples", {}))
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            examples += list(body.get("examples", {}))
        if not examples and (success.get("content") or body is not None):
            gaps.append(f"{where}: no example")
        if "429" not in responses:
            gaps.append(f"{where}: no 429")
        # 414 comes from the HTTP server, before the API: HTML, and documented as such.
        errors = [code for code in responses if code >= "400" and code != "414"]
        if any(PROBLEM not in responses[code].get("content", {}) for code in errors):
            gaps.append(f"{where}: an error that is not problem+json")
        if set(responses.get("414", {}).get("content", {})) != {"text/html"}:
            gaps.append(f"{where}: no 414 (text/html)")
        for code in ("400", "503") if body is not None else ("503",):
            if code not in responses:
                gaps.append(f"{where}: no {code}")
        if body is not None and not {"413", "415"} <= set(responses):
            gaps.append(f"{where}: a body but no 413 and 415")
    assert not gaps, "\n".join(gaps)


def test_every_example_validates_against_its_schema(schema: dict[str, Any]) -> None:
    checked = 0
    failures = []
    components = as_json_schema(schema["components"])
    for path, method, operation in operations(schema):
        media_types = [
            (f"{code} response", media)
            for code, response in operation["responses"].items()
            for media in response.get("content", {}).values()
        ]
        request_body = operation.get("requestBody", {}).get("content", {})
        media_types += [("request", media) for media in request_body.values()]
        for what, media in media_types:
            for name, example in media.get("examples", {}).items():
                # Refs inside the schema resolve against the document's components.
                validated = {**as_json_schema(media["schema"]), "components": components}
                try:
                    jsonschema.validate(example["value"], validated)
                except jsonschema.ValidationError as exc:
                    failures.append(
                        f"{method.upper()} {path} {what} {name} at {exc.json_path}: {exc.message}"
                    )
                checked += 1
    assert not failures, "\n".join(failures)
    assert checked > 100


def test_limited_operations_document_rate_headers_and_fail_closed_scopes(
    schema: dict[str, Any],
) -> None:
    order = schema["paths"]["/api/orders/"]["post"]["responses"]
    listing = schema["paths"]["/api/products/"]["get"]["responses"]
    token = schema["paths"]["/api/auth/token/"]["post"]

    assert set(order["201"]["headers"]) >= {"RateLimit-Limit", "RateLimit-Remaining", "Location"}
    assert set(order["429"]["headers"]) >= {"Retry-After", "RateLimit-Reset"}
    assert "401" in order
    assert "RateLimit-Limit" not in order["401"].get("headers", {})

    # Every operation needs the database; only `auth` also fails closed on the limiter.
    def codes(responses: dict[str, Any]) -> set[str]:
        examples = responses["503"]["content"][PROBLEM]["examples"].values()
        return {example["value"]["code"] for example in examples}

    assert codes(order) == codes(listing) == {"database_unavailable"}
    assert codes(token["responses"]) == {"database_unavailable", "rate_limit_unavailable"}
    assert set(token["responses"]["503"]["headers"]) == {"Retry-After"}
    assert "security" not in token  # no token needed to get one
    examples = token["responses"]["429"]["content"][PROBLEM]["examples"]
    assert {example["value"]["code"] for example in examples.values()} == {
        "login_locked",
        "rate_limited",
    }


def test_domain_errors_are_documented_as_the_handler_renders_them(schema: dict[str, Any]) -> None:
    conflict = schema["paths"]["/api/orders/"]["post"]["responses"]["409"]
    examples = conflict["content"][PROBLEM]["examples"]

    assert examples["409OutOfStock"]["value"] == {
        "type": "urn:ecommerce:problem:out-of-stock",
        "title": "Insufficient stock",
        "status": 409,
        "detail": "Not enough stock for: TEE-BLK-M.",
        "code": "out_of_stock",
        "instance": "/api/orders/",
        "request_id": "4f0c2a9e8b7d4c1e9a6b3d2f1e0c9b8a",
        "shortfalls": [{"sku": "TEE-BLK-M", "requested": 3, "available": 1}],
    }
    assert conflict["description"].startswith("`out_of_stock`: ")


def test_the_docs_pages_are_served(api_client: APIClient) -> None:
    for path in ("/api/docs", "/api/redoc"):
        response = api_client.get(path)
        assert response.status_code == 200
        assert b"/api/schema" in response.content


# --- Hand-built shapes against the serializers that describe them ----------------------------


@pytest.mark.django_db
def test_the_order_serializers_describe_the_orders_the_api_returns(
    client_for: Callable[[Any], APIClient],
) -> None:
    make_product(sku="TEE", stock=5, price="19.90")
    buyer = UserFactory(roles=[Role.CUSTOMER])
    client = client_for(buyer)

    placed = client.post(
        "/api/orders", {"items": [{"id": "TEE", "quantity": 2}], "payment_token": "tok_success"}
    )
    detail = client.get(f"/api/orders/{placed.json()['id']}")

    assert placed.status_code == 201
    assert set(placed.json()) == set(OrderOutputSerializer().fields)
    assert set(placed.json()["items"][0]) == set(OrderItemOutputSerializer().fields)
    assert set(detail.json()) == set(OrderDetailOutputSerializer().fields)
    history = OrderDetailOutputSerializer().fields["history"].child
    assert {tuple(sorted(event)) for event in detail.json()["history"]} == {
        tuple(sorted(history.fields))
    }


@pytest.mark.django_db
def test_the_stock_change_serializer_describes_the_stock_answer(
    client_for: Callable[[Any], APIClient],
) -> None:
    make_product(sku="TEE", stock=5)
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))

    response = manager.post("/api/products/TEE/stock", {"delta": 3, "reason": "restock"})

    assert response.status_code == 200
    assert set(response.json()) == set(StockChangeOutputSerializer().fields)
