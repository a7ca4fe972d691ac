"""Helpers shared by the users tests: caller kinds, the roles migration, problem bodies."""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings

from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.users.factories import UserFactory

# Every kind of caller the users endpoints distinguish.
CALLERS = ("anonymous", "customer", "support", "catalog_manager", "admin", "superuser")
ROLES_MIGRATION = importlib.import_module("apps.users.migrations.0002_roles")
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


def create_user_in(kind: str, **fields: Any) -> User:
    """A user of the given caller kind (not for "anonymous")."""
    if kind == "superuser":
        return UserFactory(is_staff=True, is_superuser=True, roles=[Role.CUSTOMER], **fields)
    return UserFactory(roles=[Role(kind)], **fields)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check a test client's application/problem+json response and return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) - {"errors"} == PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"{settings.PROBLEM_TYPE_BASE_URI}{code.replace('_', '-')}"
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    assert "traceback" not in response.content.decode().lower()
    return body


def error_pointers(body: dict[str, Any]) -> list[str]:
    """The JSON pointers of a validation problem's field errors, in order."""
    return [error["pointer"] for error in body["errors"]]
