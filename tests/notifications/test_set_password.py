"""Setting the password of a passwordless account with the welcome email's one-time link."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest
from django.core import mail

from apps.users.models import User
from apps.users.tokens import SetPasswordTokenGenerator, make_set_password_token
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase"


def register_without_password(api_client, on_commit) -> tuple[User, str]:
    """Register through the API and return the user and the token from the welcome email."""
    with on_commit():
        response = api_client.post("/api/users", {"name": "Ann", "email": "ann@example.com"})
    assert response.status_code == 201
    match = re.search(r"/set-password\?token=(\S+)", mail.outbox[-1].body)
    assert match is not None
    return User.objects.get(email="ann@example.com"), unquote(match.group(1))


def login(api_client, password: str) -> int:
    return api_client.post(
        "/api/auth/token", {"email": "ann@example.com", "password": password}
    ).status_code


def test_the_emailed_token_sets_the_password_once(api_client, on_commit):
    user, token = register_without_password(api_client, on_commit)
    assert not user.has_usable_password()

    response = api_client.post(
        "/api/users/set-password", {"token": token, "password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert login(api_client, NEW_PASSWORD) == 200


def test_a_used_token_is_a_clear_400(api_client, on_commit):
    user, token = register_without_password(api_client, on_commit)
    api_client.post("/api/users/set-password", {"token": token, "password": NEW_PASSWORD})
    password_hash = User.objects.get(pk=user.pk).password

    response = api_client.post(
        "/api/users/set-password", {"token": token, "password": "another-fine-passphrase"}
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "set_password_token_invalid"
    assert "already used" in body["detail"]
    assert User.objects.get(pk=user.pk).password == password_hash


def test_an_expired_token_is_a_clear_400(api_client, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    user = UserFactory(password=None)

    class TwoHoursAgo(SetPasswordTokenGenerator):
        def _now(self) -> datetime:
            return super()._now() - timedelta(hours=2)

    stale = make_set_password_token(user=user).split(".")[0] + "." + TwoHoursAgo().make_token(user)

    response = api_client.post(
        "/api/users/set-password", {"token": stale, "password": NEW_PASSWORD}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "set_password_token_expired"
    assert "expired" in response.json()["detail"]
    user.refresh_from_db()
    assert not user.has_usable_password()


@pytest.mark.parametrize(
    "token", ["", "garbage", "MQ.", "!!!.abc-def", "OTk5OTk5.c1d2-0123456789abcdef"]
)
def test_a_malformed_or_unknown_token_is_a_400(api_client, token):
    response = api_client.post(
        "/api/users/set-password", {"token": token, "password": NEW_PASSWORD}
    )

    assert response.status_code == 400
    assert response.json()["code"] in {"validation_error", "set_password_token_invalid"}


def test_password_validators_apply_and_leave_the_token_usable(api_client, on_commit):
    user, token = register_without_password(api_client, on_commit)

    weak = api_client.post("/api/users/set-password", {"token": token, "password": "12345"})
    user.refresh_from_db()
    still_unusable = not user.has_usable_password()
    strong = api_client.post("/api/users/set-password", {"token": token, "password": NEW_PASSWORD})

    assert weak.status_code == 400
    assert weak.json()["code"] == "validation_error"
    assert {error["pointer"] for error in weak.json()["errors"]} == {"#/password"}
    assert still_unusable
    assert strong.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_bearer_header_does_not_matter_to_set_password(api_client, on_commit):
    _, token = register_without_password(api_client, on_commit)
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    response = api_client.post(
        "/api/users/set-password/", {"token": token, "password": NEW_PASSWORD}
    )

    assert response.status_code == 204
