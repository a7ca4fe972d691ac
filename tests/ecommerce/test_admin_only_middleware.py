"""The admin's session stack (sessions, auth, messages) runs for the admin and HTML pages,
never for the JSON API, probes or metrics (ecommerce/middleware.py); CSRF and
X-Frame-Options run everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.test import Client

from apps.audit.models import AuditEvent
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_api_probes_and_metrics_skip_the_admin_stack_and_the_admin_runs_it() -> None:
    product = make_product(stock=3)
    client = Client()

    api = client.get(f"/api/products/{product.pk}")
    live = client.get("/health/live")
    login = client.get("/admin/login/")
    docs = client.get("/api/docs")

    assert (api.status_code, live.status_code, login.status_code) == (200, 200, 200)
    assert docs.status_code == 200
    # What the stack leaves on the request: a session, messages, a CSRF cookie to send.
    for skipped in (api, live):
        assert not hasattr(skipped.wsgi_request, "session")
        assert not hasattr(skipped.wsgi_request, "_messages")
        assert "CSRF_COOKIE" not in skipped.wsgi_request.META
    for full in (login, docs):
        assert hasattr(full.wsgi_request, "session")
        assert hasattr(full.wsgi_request, "_messages")
    # ...and on the response: no session or CSRF cookie on JSON; framing refused everywhere.
    assert api.headers["X-Frame-Options"] == "DENY"
    assert not api.cookies
    assert login.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in login.cookies
    assert docs.headers["X-Frame-Options"] == "DENY"


def test_the_admin_still_checks_csrf_and_signs_in_with_a_session() -> None:
    staff = UserFactory(email="boss@example.com", is_staff=True, roles=[Role.ADMIN])
    staff.set_password("correct horse battery")
    staff.save()
    browser = Client(enforce_csrf_checks=True)
    form = {"username": "boss@example.com", "password": "correct horse battery"}

    forged = browser.post("/admin/login/", form)
    browser.get("/admin/login/")  # the form page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    signed_in = browser.post("/admin/login/", {**form, "csrfmiddlewaretoken": token})

    assert forged.status_code == 403
    assert signed_in.status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_a_session_never_authenticates_the_api() -> None:
    boss = UserFactory(email="boss@example.com", is_staff=True, roles=[Role.ADMIN])
    browser = Client()
    browser.force_login(boss)

    response = browser.post(
        "/api/categories", {"name": "Hats", "slug": "hats"}, content_type="application/json"
    )

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_the_audit_actor_is_the_token_user_in_the_api_and_the_session_user_in_the_admin(
    client_for: Callable[[Any], Any],
) -> None:
    boss = UserFactory(email="boss@example.com", is_staff=True, roles=[Role.ADMIN])

    created = client_for(boss).post("/api/categories", {"name": "Hats", "slug": "hats"})
    admin = Client()
    admin.force_login(boss)
    category_id = created.json()["id"]
    page = admin.get(f"/admin/catalog/category/{category_id}/change/")

    assert created.status_code == 201
    assert page.status_code == 200
    event = AuditEvent.objects.get()
    assert (event.actor_label, event.source, event.action) == ("boss@example.com", "api", "create")


def test_the_admins_own_middleware_checks_still_hold() -> None:
    # The admin checks (admin.E408-E410) look for Django's classes, and their order.
    errors = [e.id for e in checks.run_checks() if e.id.startswith("admin.")]

    assert errors == []
    assert not settings.SILENCED_SYSTEM_CHECKS
