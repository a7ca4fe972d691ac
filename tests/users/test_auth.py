"""JWT lifecycle: obtain, use, expire, forge, rotate, log out, revoke."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.users.models import User
from tests.users.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.helpers import assert_problem

WWW_AUTHENTICATE = 'Bearer realm="api"'


def obtain_tokens(client: APIClient, email: str, password: str) -> Any:
    return client.post("/api/auth/token", {"email": email, "password": password}, format="json")


def get_me(token: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/users/me")


def refresh(client: APIClient, token: str) -> Any:
    return client.post("/api/auth/token/refresh", {"refresh": token}, format="json")


def logout(client: APIClient, token: str) -> Any:
    return client.post("/api/auth/logout", {"refresh": token}, format="json")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def signed_claims(user: User) -> dict[str, Any]:
    """The claims our backend would sign for `user`'s access token, issuer included."""
    return {**AccessToken.for_user(user).payload, "iss": settings.SIMPLE_JWT["ISSUER"]}


def assert_token_refused(response: Any, code: str = "token_not_valid") -> dict[str, Any]:
    problem = assert_problem(response, 401, code)
    assert problem["title"] == "Unauthorized"
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    return problem


# --- Obtain -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token", "/api/auth/token/"])
def test_valid_credentials_give_an_access_token_that_opens_me(api_client, path):
    # given
    user = UserFactory(email="ann@example.com")

    # when
    response = api_client.post(
        path, {"email": "ann@example.com", "password": DEFAULT_PASSWORD}, format="json"
    )

    # then
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    me = get_me(tokens["access"])
    assert me.status_code == 200
    assert me.json()["id"] == user.pk
    assert me.json()["email"] == "ann@example.com"
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.django_db
def test_access_token_is_short_lived_and_signed_with_hs256(api_client):
    # given
    UserFactory(email="ann@example.com")

    # when
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()

    # then
    header = b64url_json(tokens["access"].split(".")[0])
    claims = b64url_json(tokens["access"].split(".")[1])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["token_type"] == "access"
    assert claims["iss"] == "ecommerce"
    assert claims["exp"] - claims["iat"] == 300
    assert b64url_json(tokens["refresh"].split(".")[1])["token_type"] == "refresh"


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["ANN@EXAMPLE.COM", "Ann@Example.com", "  ann@example.com "])
def test_email_is_matched_whatever_its_case(api_client, typed):
    # given
    user = UserFactory(email="ann@example.com")

    # when
    response = obtain_tokens(api_client, typed, DEFAULT_PASSWORD)

    # then
    assert response.status_code == 200
    assert get_me(response.json()["access"]).json()["id"] == user.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ann@example.com", "wrong-password-123"),
        ("ann@example.com", DEFAULT_PASSWORD.upper()),
        ("nobody@example.com", DEFAULT_PASSWORD),
    ],
    ids=["wrong-password", "password-other-case", "unknown-email"],
)
def test_wrong_credentials_are_a_401(api_client, email, password):
    # given
    user = UserFactory(email="ann@example.com")

    # when
    response = obtain_tokens(api_client, email, password)

    # then
    problem = assert_problem(response, 401, "no_active_account")
    assert problem["detail"] == "No active account found with the given credentials"
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert "access" not in problem
    user.refresh_from_db()
    assert user.last_login is None


@pytest.mark.django_db
def test_missing_credentials_are_a_400(api_client):
    # when
    response = api_client.post("/api/auth/token", {}, format="json")

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert sorted(error["pointer"] for error in problem["errors"]) == ["#/email", "#/password"]


# --- Access tokens that must be refused ----------------------------------------------------


@pytest.mark.django_db
def test_anonymous_me_is_a_401_with_www_authenticate(api_client):
    # when
    response = api_client.get("/api/users/me")

    # then
    problem = assert_problem(response, 401, "not_authenticated")
    assert problem["detail"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


@pytest.mark.django_db
def test_expired_access_token_is_a_401():
    # given
    user = UserFactory()
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(minutes=10), lifetime=timedelta(minutes=5))

    # when
    response = get_me(str(token))

    # then
    problem = assert_token_refused(response)
    assert problem["detail"] == "Given token not valid for any token type"


@pytest.mark.django_db
def test_access_token_expires_after_its_lifetime():
    # given: a token issued with a one-second lifetime, checked a minute later
    user = UserFactory()
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(minutes=1), lifetime=timedelta(seconds=1))
    fresh = AccessToken.for_user(user)

    # when
    expired_response = get_me(str(token))
    fresh_response = get_me(str(fresh))

    # then
    assert_token_refused(expired_response)
    assert fresh_response.status_code == 200


@pytest.mark.django_db
def test_token_with_a_tampered_payload_is_a_401():
    # given: a customer swaps the user id in their own token for an admin's
    customer = UserFactory()
    admin = UserFactory(is_superuser=True, is_staff=True)
    header, payload, signature = str(AccessToken.for_user(customer)).split(".")
    claims = b64url_json(payload)
    claims["user_id"] = admin.pk
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])

    # when
    response = get_me(forged)

    # then
    assert_token_refused(response)


@pytest.mark.django_db
def test_token_with_a_tampered_signature_is_a_401():
    # given
    user = UserFactory()
    header, payload, signature = str(AccessToken.for_user(user)).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "="))
    raw[0] ^= 0x01
    forged = ".".join([header, payload, b64url(bytes(raw))])

    # when
    response = get_me(forged)

    # then
    assert_token_refused(response)


@pytest.mark.django_db
# Our test key is short for HS384/HS512; PyJWT's warning about it is beside the point here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    ("algorithm", "key", "status"),
    [
        ("HS256", settings.SIMPLE_JWT["SIGNING_KEY"], 200),  # control: the forgery is well built
        ("HS512", settings.SIMPLE_JWT["SIGNING_KEY"], 401),
        ("HS384", settings.SIMPLE_JWT["SIGNING_KEY"], 401),
        ("HS256", "another-secret-key-of-sufficient-length-0123", 401),
    ],
    ids=["hs256-our-key", "hs512-our-key", "hs384-our-key", "hs256-other-key"],
)
def test_only_hs256_with_our_key_is_accepted(algorithm, key, status):
    # given
    user = UserFactory()
    token = jwt.encode(signed_claims(user), key, algorithm=algorithm)

    # when
    response = get_me(token)

    # then
    assert response.status_code == status
    if status == 401:
        assert_token_refused(response)


@pytest.mark.django_db
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_is_a_401(alg):
    # given
    user = UserFactory()
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(signed_claims(user)).encode())

    # when
    response = get_me(f"{header}.{payload}.")

    # then
    assert_token_refused(response)


@pytest.mark.django_db
def test_refresh_token_is_not_accepted_as_an_access_token():
    # given
    user = UserFactory()

    # when
    response = get_me(str(RefreshToken.for_user(user)))

    # then
    assert_token_refused(response)


@pytest.mark.django_db
def test_token_from_another_issuer_is_a_401():
    # given
    user = UserFactory()
    claims = {**signed_claims(user), "iss": "someone-else"}

    # when
    response = get_me(jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"))

    # then
    assert_token_refused(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer", "bad_authorization_header"),
        ("Bearer a b", "bad_authorization_header"),
        ("Bearer not-a-jwt", "token_not_valid"),
    ],
    ids=["no-token", "two-values", "garbage"],
)
def test_malformed_authorization_header_is_a_401(api_client, header, code):
    # given
    api_client.credentials(HTTP_AUTHORIZATION=header)

    # when
    response = api_client.get("/api/users/me")

    # then
    assert_token_refused(response, code)


@pytest.mark.django_db
def test_token_of_a_deleted_user_is_a_401():
    # given
    user = UserFactory()
    token = str(AccessToken.for_user(user))
    user.delete()

    # when
    response = get_me(token)

    # then
    assert_token_refused(response, "user_not_found")


# --- Refresh rotation and logout -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token/refresh", "/api/auth/token/refresh/"])
def test_refresh_returns_a_new_pair_and_the_old_refresh_is_refused(api_client, path):
    # given
    UserFactory(email="ann@example.com")
    first = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()

    # when
    rotated = api_client.post(path, {"refresh": first["refresh"]}, format="json")
    reused = api_client.post(path, {"refresh": first["refresh"]}, format="json")

    # then
    assert rotated.status_code == 200
    pair = rotated.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != first["refresh"]
    assert get_me(pair["access"]).status_code == 200
    problem = assert_token_refused(reused)
    assert problem["detail"] == "Token is blacklisted"


@pytest.mark.django_db
def test_rotated_refresh_token_keeps_working_once(api_client):
    # given
    UserFactory(email="ann@example.com")
    first = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()
    second = refresh(api_client, first["refresh"]).json()

    # when
    third = refresh(api_client, second["refresh"])

    # then
    assert third.status_code == 200
    assert_token_refused(refresh(api_client, second["refresh"]))


@pytest.mark.django_db
def test_access_token_is_not_accepted_as_a_refresh_token(api_client):
    # given
    UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()

    # when
    response = refresh(api_client, tokens["access"])

    # then
    problem = assert_token_refused(response)
    assert problem["detail"] == "Token has wrong type"


@pytest.mark.django_db
def test_expired_refresh_token_is_a_401(api_client):
    # given
    user = UserFactory()
    token = RefreshToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(days=2), lifetime=timedelta(days=1))

    # when
    response = refresh(api_client, str(token))

    # then
    assert_token_refused(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/logout", "/api/auth/logout/"])
def test_logout_blacklists_the_refresh_token(api_client, path):
    # given
    UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()

    # when
    response = api_client.post(path, {"refresh": tokens["refresh"]}, format="json")

    # then
    assert response.status_code == 204
    assert response.content == b""
    problem = assert_token_refused(refresh(api_client, tokens["refresh"]))
    assert problem["detail"] == "Token is blacklisted"


@pytest.mark.django_db
def test_logging_out_twice_is_a_401(api_client):
    # given
    UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()
    assert logout(api_client, tokens["refresh"]).status_code == 204

    # when
    response = logout(api_client, tokens["refresh"])

    # then
    problem = assert_token_refused(response)
    assert problem["detail"] == "Token is blacklisted"


@pytest.mark.django_db
@pytest.mark.parametrize("token_kind", ["access", "garbage"])
def test_logout_with_something_other_than_a_refresh_token_is_a_401(api_client, token_kind):
    # given
    UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()
    token = tokens["access"] if token_kind == "access" else "not.a.token"

    # when
    response = logout(api_client, token)

    # then
    assert_token_refused(response)
    assert refresh(api_client, tokens["refresh"]).status_code == 200


@pytest.mark.django_db
def test_logout_without_a_token_is_a_400(api_client):
    # when
    response = api_client.post("/api/auth/logout", {}, format="json")

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert [error["pointer"] for error in problem["errors"]] == ["#/refresh"]


# --- Accounts that lose access ---------------------------------------------------------------


@pytest.mark.django_db
def test_inactive_user_cannot_obtain_a_token(api_client):
    # given
    UserFactory(email="ann@example.com", is_active=False)

    # when
    response = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD)

    # then
    assert_problem(response, 401, "no_active_account")


@pytest.mark.django_db
def test_deactivating_a_user_refuses_their_tokens(api_client):
    # given
    user = UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()
    assert get_me(tokens["access"]).status_code == 200

    # when
    User.objects.filter(pk=user.pk).update(is_active=False)

    # then
    problem = assert_token_refused(get_me(tokens["access"]), "user_inactive")
    assert problem["detail"] == "User is inactive"
    assert_problem(refresh(api_client, tokens["refresh"]), 401, "no_active_account")


@pytest.mark.django_db
def test_password_change_revokes_earlier_access_tokens(api_client):
    # given
    user = UserFactory(email="ann@example.com")
    old = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()

    # when
    user.set_password("a-brand-new-passphrase")
    user.save(update_fields=["password"])

    # then
    problem = assert_token_refused(get_me(old["access"]), "password_changed")
    assert problem["detail"] == "The user's password has been changed."
    assert_problem(refresh(api_client, old["refresh"]), 401, "password_changed")
    assert_problem(
        obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD), 401, "no_active_account"
    )
    new = obtain_tokens(api_client, "ann@example.com", "a-brand-new-passphrase")
    assert new.status_code == 200
    assert get_me(new.json()["access"]).status_code == 200


@pytest.mark.django_db
def test_refresh_token_of_a_deleted_user_is_a_401(api_client):
    # given
    user = UserFactory(email="ann@example.com")
    tokens = obtain_tokens(api_client, "ann@example.com", DEFAULT_PASSWORD).json()
    user.delete()

    # when
    response = refresh(api_client, tokens["refresh"])

    # then
    problem = assert_token_refused(response, "no_active_account")
    assert problem["detail"] == "No active account found for the given token."


# --- The admin's login form: the same rate limit and lockout as the token view ---------------

ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def admin_limits(settings: Any) -> None:
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMITS = dict.fromkeys(("auth", "orders", "writes", "reads"), "1000/d")
    settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES = 3
    settings.LOGIN_LOCKOUT_IP_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 600
    settings.TRUSTED_PROXY_CIDRS = []
    settings.TRUSTED_PROXY_COUNT = 0


def admin_login(address: str, email: str, password: str = DEFAULT_PASSWORD, **extra: Any) -> Any:
    return Client(REMOTE_ADDR=address).post(
        ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, **extra
    )


def staff(email: str = "ops@example.com") -> User:
    return UserFactory(email=email, is_staff=True, is_superuser=True)


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_limits")
def test_admin_login_locks_the_account_from_the_failing_address_only() -> None:
    staff()
    failures = [
        admin_login("203.0.113.66", "ops@example.com", "wrong").status_code for _ in range(3)
    ]
    locked = admin_login("203.0.113.66", "ops@example.com")
    elsewhere = admin_login("198.51.100.7", "ops@example.com")

    assert failures == [200, 200, 200]  # the form again, with its error
    problem = assert_problem(locked, 429, "login_locked")
    assert 590 <= int(locked["Retry-After"]) <= 600
    assert problem["instance"] == ADMIN_LOGIN
    assert "sessionid" not in locked.cookies
    assert elsewhere.status_code == 302
    assert elsewhere["Location"] == "/admin/"


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_limits")
def test_admin_and_api_failures_share_one_ceiling_per_address() -> None:
    staff()
    api = APIClient(REMOTE_ADDR="203.0.113.66")
    failures = [obtain_tokens(api, f"n{i}@example.com", "wrong").status_code for i in range(3)] + [
        admin_login("203.0.113.66", f"m{i}@example.com", "wrong").status_code for i in range(2)
    ]

    assert failures == [401, 401, 401, 200, 200]
    assert_problem(admin_login("203.0.113.66", "ops@example.com"), 429, "login_locked")
    assert_problem(obtain_tokens(api, "ops@example.com", DEFAULT_PASSWORD), 429, "login_locked")
    assert admin_login("198.51.100.7", "ops@example.com").status_code == 302


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_limits")
def test_admin_login_counts_in_the_auth_rate_limit(settings: Any) -> None:
    settings.RATE_LIMITS["auth"] = "2/d"
    staff()
    api = APIClient(REMOTE_ADDR="203.0.113.66")

    first = obtain_tokens(api, "ops@example.com", DEFAULT_PASSWORD)
    second = admin_login("203.0.113.66", "ops@example.com")
    third = admin_login("203.0.113.66", "ops@example.com")

    assert (first.status_code, second.status_code) == (200, 302)
    assert assert_problem(third, 429, "rate_limited")["detail"].startswith(
        "Too many requests: the auth limit is 2 per 86400 seconds."
    )
    assert int(third["Retry-After"]) >= 1
    # Showing the form is not a login attempt.
    assert Client(REMOTE_ADDR="203.0.113.66").get(ADMIN_LOGIN).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_limits")
def test_a_customer_password_on_the_admin_form_counts_as_a_failure() -> None:
    """The admin refuses non-staff accounts with the same form error: a failed login."""
    UserFactory(email="amy@example.com")
    answers = [admin_login("203.0.113.66", "amy@example.com").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("admin_limits")
def test_admin_login_behind_trusted_proxies_follows_the_forwarded_client(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/8"]
    staff()

    attacker = [
        admin_login(
            "10.0.0.2", "ops@example.com", "wrong", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.66"
        ).status_code
        for _ in range(4)
    ]
    owner = admin_login("10.0.0.2", "ops@example.com", HTTP_X_FORWARDED_FOR="198.51.100.7")
    spoofer = [
        admin_login(
            "203.0.113.99", "ops@example.com", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
        ).status_code
        for i in range(4)
    ]

    assert attacker == [200, 200, 200, 429]
    assert owner.status_code == 302
    assert spoofer == [200, 200, 200, 429]
