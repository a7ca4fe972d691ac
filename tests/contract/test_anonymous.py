"""Every operation the schema protects refuses an anonymous caller with a 401 problem.

The schemathesis run fuzzes, as an anonymous client, only the operations the schema opens
to one (tests/contract/test_schemathesis.py); this proves the rest, each of them, with the
bodies a fuzzer would start with, before any of its input is looked at.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.test import Client

from tests.contract.conftest import operations

pytestmark = pytest.mark.django_db

# A value that each path parameter's pattern accepts: the request reaches the view, so
# the 401 comes from its permission check, not from the URL resolver.
PARAMETER_VALUES = {
    "public_id": str(uuid.uuid4()),
    "order_id": str(uuid.uuid4()),
    "refund_id": str(uuid.uuid4()),
    "return_id": str(uuid.uuid4()),
    "token": str(uuid.uuid4()),
    "sku": "SKU-1",
    "slug": "some-slug",
}
BODIES: list[Any] = [None, {}, {"x": 1}, [], "not json"]


def schema(client: Client) -> dict[str, Any]:
    response = client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMETER_VALUES.get(m.group(1), "1"), path)


def test_every_protected_operation_answers_an_anonymous_caller_401() -> None:
    client = Client()
    protected = operations(schema(client), open_to_anonymous=False)
    assert len(protected) >= 60, protected

    answers: dict[str, set[tuple[int, str, str]]] = {}
    for name in protected:
        method, path = name.split(" ", 1)
        for body in BODIES:
            kwargs: dict[str, Any] = {}
            if body is not None and method != "GET":
                kwargs = {"data": body, "content_type": "application/json"}
                if isinstance(body, str):
                    kwargs["data"] = body.encode()
            response = getattr(client, method.lower())(concrete(path), **kwargs)
            code = response.json().get("code", "") if response.content else ""
            answers.setdefault(name, set()).add(
                (response.status_code, response["Content-Type"], code)
            )

    refused = (401, "application/problem+json", "not_authenticated")
    wrong = {name: seen for name, seen in answers.items() if seen != {refused}}
    assert not wrong, wrong
