"""POST /api/users: open registration, its refusals, and the spec's curl shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from apps.users.models import User
from tests.users.factories import UserFactory
from tests.users.helpers import assert_problem, error_pointers

STRONG_PASSWORD = "violet-kettle-orbit-42"


def register(client: APIClient, body: Any, path: str = "/api/users") -> Any:
    return client.post(path, body, format="json")


# --- Happy path ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/users", "/api/users/"])
def test_registration_creates_a_customer_and_answers_201_without_secrets(api_client, path):
    # given
    body = {"name": "John Doe", "email": "john@example.com", "password": STRONG_PASSWORD}

    # when
    response = register(api_client, body, path)

    # then
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"id", "name", "email", "created_at", "date_joined"}
    user = User.objects.get()
    assert data["id"] == user.pk
    assert data["name"] == "John Doe"
    assert data["email"] == "john@example.com"
    assert parse_datetime(data["created_at"]) == user.date_joined
    assert data["date_joined"] == data["created_at"]  # deprecated, for one release
    assert response["Location"] == f"/api/users/{user.pk}/"
    assert STRONG_PASSWORD not in response.content.decode()
    assert user.password not in response.content.decode()
    assert list(user.groups.values_list("name", flat=True)) == ["customer"]
    assert user.check_password(STRONG_PASSWORD)
    assert user.is_active is True
    assert user.is_staff is False
    assert user.is_superuser is False


@pytest.mark.django_db
def test_registered_user_with_a_password_can_obtain_a_token(api_client):
    # given
    body = {"name": "John Doe", "email": "john@example.com", "password": STRONG_PASSWORD}
    assert register(api_client, body).status_code == 201

    # when
    response = api_client.post(
        "/api/auth/token",
        {"email": "john@example.com", "password": STRONG_PASSWORD},
        format="json",
    )

    # then
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


@pytest.mark.django_db
def test_registration_without_password_gives_an_account_that_cannot_obtain_a_token(api_client):
    # given
    response = register(api_client, {"name": "John Doe", "email": "john@example.com"})
    assert response.status_code == 201
    user = User.objects.get()

    # when
    token_response = api_client.post(
        "/api/auth/token",
        {"email": "john@example.com", "password": "anything-at-all"},
        format="json",
    )

    # then
    assert user.has_usable_password() is False
    assert_problem(token_response, 401, "no_active_account")


@pytest.mark.django_db
def test_registration_trims_the_name_and_lower_cases_the_email(api_client):
    # when
    response = register(api_client, {"name": "  Jane Roe  ", "email": "  Jane.Roe@Example.COM "})

    # then
    assert response.status_code == 201
    assert response.json()["name"] == "Jane Roe"
    assert response.json()["email"] == "jane.roe@example.com"
    assert User.objects.get().email == "jane.roe@example.com"


@pytest.mark.django_db
def test_registration_accepts_a_name_of_exactly_150_characters(api_client):
    # when
    response = register(api_client, {"name": "n" * 150, "email": "long@example.com"})

    # then
    assert response.status_code == 201
    assert User.objects.get().name == "n" * 150


@pytest.mark.django_db
def test_privilege_fields_in_the_body_grant_nothing(api_client):
    # given
    body = {
        "name": "Mallory",
        "email": "mallory@example.com",
        "is_staff": True,
        "is_superuser": True,
        "is_active": False,
        "groups": ["admin"],
        "roles": ["admin"],
    }

    # when
    response = register(api_client, body)

    # then
    assert response.status_code == 201
    user = User.objects.get(email="mallory@example.com")
    assert user.is_staff is False
    assert user.is_superuser is False
    assert user.is_active is True
    assert list(user.groups.values_list("name", flat=True)) == ["customer"]
    assert User.objects.filter(groups__name__in=["admin", "support"]).exists() is False


# --- Refusals -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "pointer", "error_code"),
    [
        ({"email": "john@example.com"}, "#/name", "required"),
        ({"name": "John Doe"}, "#/email", "required"),
        ({"name": "John Doe", "email": "not-an-email"}, "#/email", "invalid"),
        ({"name": "John Doe", "email": "john@"}, "#/email", "invalid"),
        ({"name": "", "email": "john@example.com"}, "#/name", "blank"),
        ({"name": "   ", "email": "john@example.com"}, "#/name", "blank"),
        ({"name": "n" * 151, "email": "john@example.com"}, "#/name", "max_length"),
        ({"name": None, "email": "john@example.com"}, "#/name", "null"),
        ({"name": "John Doe", "email": "john@example.com", "password": ""}, "#/password", "blank"),
    ],
    ids=[
        "missing-name",
        "missing-email",
        "malformed-email",
        "email-without-domain",
        "empty-name",
        "blank-name",
        "name-too-long",
        "null-name",
        "empty-password",
    ],
)
def test_invalid_registration_is_a_400_naming_the_field(api_client, body, pointer, error_code):
    # when
    response = register(api_client, body)

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert problem["title"] == "Invalid request"
    assert error_pointers(problem) == [pointer]
    assert problem["errors"][0]["code"] == error_code
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_every_missing_field_is_reported_at_once(api_client):
    # when
    response = register(api_client, {})

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert sorted(error_pointers(problem)) == ["#/email", "#/name"]
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "existing_email", ["john@example.com", "John@Example.com"], ids=["same-case", "other-case"]
)
@pytest.mark.parametrize("new_email", ["John@Example.com", "JOHN@EXAMPLE.COM", "john@example.com"])
def test_duplicate_email_in_any_case_is_a_409(api_client, existing_email, new_email):
    # given
    first = register(api_client, {"name": "John Doe", "email": existing_email})
    assert first.status_code == 201

    # when
    response = register(api_client, {"name": "Other John", "email": new_email})

    # then
    problem = assert_problem(response, 409, "email_taken")
    assert problem["title"] == "Email already registered"
    assert problem["detail"] == "An account with the email john@example.com already exists."
    assert User.objects.count() == 1
    assert User.objects.get().name == "John Doe"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("Sh0rt-pw", "john@example.com"),  # below the 10-character minimum
        ("password123", "john@example.com"),  # on the common-password list
        ("8461937205", "john@example.com"),  # entirely numeric
        ("john@example.com", "john@example.com"),  # the email itself
        ("johnexample", "johnexample@shop.test"),  # the email's local part
    ],
    ids=["too-short", "common", "numeric", "same-as-email", "similar-to-email"],
)
def test_weak_password_is_a_400_on_password(api_client, password, email):
    # when
    response = register(api_client, {"name": "John Doe", "email": email, "password": password})

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert set(error_pointers(problem)) == {"#/password"}
    assert password not in response.content.decode()
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_password_longer_than_128_characters_is_refused(api_client):
    # when
    response = register(
        api_client, {"name": "John Doe", "email": "john@example.com", "password": "x1-" * 43}
    )

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_pointers(problem) == ["#/password"]
    assert problem["errors"][0]["code"] == "max_length"
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b'{"name": "John Doe", "email": '),
        ("application/json", b"name=John&email=john@example.com"),
        ("application/json", b'{"name": NaN, "email": "john@example.com"}'),
        ("application/json", b'{"name": "J\xff", "email": "john@example.com"}'),
        ("application/x-www-form-urlencoded", b'{"name": "John Doe", "email": '),
        ("", b'{"name": "John Doe"'),
    ],
    ids=[
        "truncated-json",
        "form-labelled-json",
        "nan-constant",
        "not-utf8",
        "curl-shape-truncated",
        "no-content-type-truncated",
    ],
)
def test_malformed_body_is_a_400_problem(api_client, content_type, raw):
    # when
    response = api_client.generic("POST", "/api/users", raw, content_type=content_type)

    # then
    problem = assert_problem(response, 400, "parse_error")
    assert problem["detail"].startswith("Malformed JSON")
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [[], [{"name": "John Doe", "email": "john@example.com"}], "x", 7])
def test_json_body_that_is_not_an_object_is_a_400(api_client, body):
    # when
    response = api_client.post("/api/users", json.dumps(body), content_type="application/json")

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_pointers(problem) == ["#"]
    assert problem["errors"][0]["code"] == "invalid"
    assert User.objects.count() == 0


def _body_of_size(size: int) -> bytes:
    """A valid registration body padded (in the name) to exactly `size` bytes."""
    template = '{"name": "%s", "email": "big@example.com"}'
    padding = size - len(template % "")
    return (template % ("n" * padding)).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_body_over_the_limit_is_a_413(api_client, settings, content_type):
    # given
    settings.API_MAX_BODY_BYTES = 120
    body = _body_of_size(121)

    # when
    response = api_client.generic("POST", "/api/users", body, content_type=content_type)

    # then
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["detail"] == "The request body exceeds 120 bytes."
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_body_at_the_limit_is_accepted(api_client, settings):
    # given
    settings.API_MAX_BODY_BYTES = 120
    body = _body_of_size(120)

    # when
    response = api_client.generic("POST", "/api/users", body, content_type="application/json")

    # then
    assert response.status_code == 201
    assert User.objects.get().email == "big@example.com"


@pytest.mark.django_db
def test_multipart_body_is_a_415(api_client):
    # when
    response = api_client.post(
        "/api/users", {"name": "John Doe", "email": "john@example.com"}, format="multipart"
    )

    # then
    problem = assert_problem(response, 415, "unsupported_media_type")
    assert problem["detail"].startswith('Unsupported media type "multipart/form-data')
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "delete"])
def test_collection_refuses_other_write_methods(client_for, method):
    # given
    user = UserFactory()

    # when
    response = getattr(client_for(user), method)("/api/users")

    # then
    problem = assert_problem(response, 405, "method_not_allowed")
    assert problem["detail"] == f'Method "{method.upper()}" not allowed.'
    assert User.objects.get() == user


# --- The spec's curl shapes -----------------------------------------------------------------

SPEC_BODY = b'{"name":"John Doe","email":"john@example.com"}'


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "", "application/json"],
    ids=["curl-d-default", "no-content-type", "json"],
)
@pytest.mark.parametrize("path", ["/api/users", "/api/users/"])
def test_spec_curl_body_registers_john(api_client, content_type, path):
    # when
    response = api_client.generic("POST", path, SPEC_BODY, content_type=content_type)

    # then
    assert response.status_code == 201
    assert response.json()["name"] == "John Doe"
    assert response.json()["email"] == "john@example.com"
    user = User.objects.get()
    assert (user.name, user.email) == ("John Doe", "john@example.com")
    assert user.has_usable_password() is False


@pytest.mark.django_db
def test_spec_curl_body_with_leading_whitespace_is_still_json(api_client):
    # when
    response = api_client.generic(
        "POST", "/api/users", b"\n  " + SPEC_BODY, content_type="application/x-www-form-urlencoded"
    )

    # then
    assert response.status_code == 201
    assert User.objects.get().email == "john@example.com"


@pytest.mark.django_db
def test_genuine_form_body_registers(api_client):
    # given
    body = "name=John+Doe&email=John%40Example.com&password=violet-kettle-orbit-42"

    # when
    response = api_client.generic(
        "POST", "/api/users", body, content_type="application/x-www-form-urlencoded"
    )

    # then
    assert response.status_code == 201
    user = User.objects.get()
    assert (user.name, user.email) == ("John Doe", "john@example.com")
    assert user.check_password(STRONG_PASSWORD)


@pytest.mark.django_db
def test_form_body_with_an_invalid_field_is_a_400(api_client):
    # when
    response = api_client.generic(
        "POST",
        "/api/users",
        "name=John+Doe&email=nope",
        content_type="application/x-www-form-urlencoded",
    )

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert error_pointers(problem) == ["#/email"]
    assert User.objects.count() == 0


# --- Who may register ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("roles", [["customer"], ["catalog_manager"], []])
def test_a_signed_in_caller_without_the_support_role_cannot_register_another_account(
    api_client, roles
):
    # given
    caller = UserFactory(roles=roles)
    api_client.force_authenticate(caller)

    # when
    response = register(api_client, {"name": "Second Me", "email": "second@example.com"})

    # then
    problem = assert_problem(response, 403, "already_signed_in")
    assert problem["title"] == "Already signed in"
    assert "Location" not in response
    assert list(User.objects.values_list("email", flat=True)) == [caller.email]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["support", "admin"])
def test_support_staff_register_a_customer_and_can_read_what_the_location_names(api_client, role):
    # given
    api_client.force_authenticate(UserFactory(roles=[role]))

    # when
    response = register(api_client, {"name": "Phoned In", "email": "phoned@example.com"})

    # then
    assert response.status_code == 201, response.content
    created = User.objects.get(email="phoned@example.com")
    assert list(created.groups.values_list("name", flat=True)) == ["customer"]
    followed = api_client.get(response["Location"])
    assert followed.status_code == 200
    assert followed.json()["email"] == "phoned@example.com"
