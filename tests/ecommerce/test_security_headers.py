"""Content-Security-Policy by path, and the HTTPS redirect that spares probes and scrapes."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from django.test import Client

from ecommerce import security

pytestmark = pytest.mark.django_db


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def test_the_admin_allows_only_its_own_origin_and_no_inline_script(client: Client) -> None:
    policy = directives(client.get("/admin/login/")["Content-Security-Policy"])

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def test_swagger_ui_may_run_exactly_its_inline_script(client: Client) -> None:
    response = client.get("/api/docs")
    policy = directives(response["Content-Security-Policy"])
    inline = re.findall(rb"<script>(.*?)</script>", response.content, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline[0]).digest()).decode()

    assert response.status_code == 200
    assert len(inline) == 1
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # "Try it out" calls this API only


def test_redoc_loads_scripts_from_this_origin_only(client: Client) -> None:
    policy = directives(client.get("/api/redoc")["Content-Security-Policy"])

    assert policy["script-src"] == ["'self'"]
    assert policy["worker-src"] == ["blob:"]


@pytest.mark.parametrize("path", ["/api/products", "/api/nowhere", "/health/live"])
def test_everything_else_may_load_and_frame_nothing(client: Client, path: str) -> None:
    assert client.get(path)["Content-Security-Policy"] == security.API_POLICY


@pytest.fixture
def https_only(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


@pytest.mark.usefixtures("https_only")
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health/live", 200),
        ("/health", 200),
        ("/metrics", 200),
        ("/api/products", 301),
        ("/admin/login/", 301),
        ("/healthz", 301),  # only the health endpoints themselves are spared
    ],
)
def test_plain_http_is_redirected_except_probes_and_scrapes(
    client: Client, path: str, status: int
) -> None:
    response = client.get(path)

    assert response.status_code == status
    if status == 301:
        assert response["Location"] == f"https://testserver{path}"


@pytest.mark.usefixtures("https_only")
def test_https_through_the_proxy_is_served_with_hsts(client: Client) -> None:
    response = client.get("/api/products", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no-such-page", 404), ("DELETE", "/health/live", 405), ("GET", "/api/products", 200)],
)
def test_problem_responses_carry_the_security_headers_like_any_other(
    client: Client, method: str, path: str, status: int
) -> None:
    response = client.generic(method, path)

    assert response.status_code == status
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Content-Security-Policy" in response
