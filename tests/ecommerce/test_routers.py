"""The API router matches each route with and without a trailing slash, never redirecting."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import resolve

from ecommerce.api.permissions import Role
from tests.users.factories import UserFactory


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/users", "user-list"),
        ("/api/users/", "user-list"),
        ("/api/users/me", "user-me"),
        ("/api/users/me/", "user-me"),
        ("/api/users/12", "user-detail"),
        ("/api/users/12/", "user-detail"),
    ],
)
def test_route_resolves_with_and_without_slash(path: str, name: str) -> None:
    assert resolve(path).url_name == name


@pytest.mark.django_db
def test_both_spellings_answer_the_same_without_redirect(client_for: Any) -> None:
    support = UserFactory(roles=[Role.SUPPORT])
    client = client_for(support)

    bare = client.get("/api/users")
    slashed = client.get("/api/users/")

    assert bare.status_code == 200
    assert slashed.status_code == 200
    assert bare.json() == slashed.json()
    assert bare.json()["count"] == 1
