"""Fixtures for the notification tests: fast retries, users in each role, order placement."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.migrations.loader import MigrationLoader
from rest_framework.test import APIClient

from apps.catalog import services as catalog_services
from apps.catalog.models import Product
from apps.notifications.models import WebhookEndpoint
from apps.notifications.services.endpoints import new_secret
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.celery import app as celery_app
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

GRANTS_MIGRATION = importlib.import_module("apps.notifications.migrations.0002_role_permissions")
ALL_ENDPOINTS_MIGRATION = importlib.import_module(
    "apps.notifications.migrations.0005_admin_views_all_webhook_endpoints"
)
LOCAL_HOSTS = ["127.0.0.1", "localhost"]


@pytest.fixture(autouse=True)
def _eager_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager tasks replay their `self.retry(...)` at once (countdown skipped) instead of
    raising Retry to the outbox (CELERY_TASK_EAGER_PROPAGATES), as a worker would retry."""
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


@pytest.fixture(autouse=True)
def _fast_notifications(settings: Any) -> None:
    """Tiny backoff (eager retries run at once anyway), short timeouts, few attempts."""
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0.01
    settings.NOTIFICATION_RETRY_CAP_SECONDS = 0.02
    settings.NOTIFICATION_EMAIL_MAX_ATTEMPTS = 3
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.01
    settings.WEBHOOK_RETRY_CAP_SECONDS = 0.02
    settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 10
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.FRONTEND_URL = "https://shop.example"
    settings.SET_PASSWORD_URL = "https://shop.example/set-password"
    settings.DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"


@pytest.fixture
def allow_local(settings: Any) -> list[str]:
    """Let webhooks reach the test receivers on this machine."""
    settings.WEBHOOK_ALLOWED_HOSTS = LOCAL_HOSTS
    return LOCAL_HOSTS


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """Run what commits queue (eager Celery tasks), as a committed transaction would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def customer(db: None) -> User:
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def other_customer(db: None) -> User:
    return UserFactory(roles=[Role.CUSTOMER])


@pytest.fixture
def support(db: None) -> User:
    return UserFactory(roles=[Role.SUPPORT], is_staff=True)


@pytest.fixture
def shop_admin(db: None) -> User:
    return UserFactory(roles=[Role.ADMIN], is_staff=True)


@pytest.fixture
def notification_grants(db: None) -> None:
    """The role permissions as the data migration leaves them (a flush drops them)."""
    apps = MigrationLoader(None, ignore_no_migrations=True).project_state().apps
    GRANTS_MIGRATION.grant(apps, None)
    ALL_ENDPOINTS_MIGRATION.grant(apps, None)


def make_endpoint(owner: User, url: str, events: list[str] | None = None) -> WebhookEndpoint:
    """An endpoint written directly: for URLs the API would refuse (the guard's tests)."""
    return WebhookEndpoint.objects.create(
        owner=owner,
        url=url,
        events=events or ["order_placed", "order_paid"],
        secret=new_secret(),
    )


def make_tee() -> Product:
    """A product sold in two variants, each with its own name and SKU."""
    return catalog_services.create_product(
        name="Organic tee",
        variants=[
            catalog_services.VariantSpec(
                sku="TEE-BLK-M", price=Decimal("19.90"), name="M / Black", initial_stock=10
            ),
            catalog_services.VariantSpec(
                sku="TEE-BLK-L", price=Decimal("21.90"), name="L / Black", initial_stock=10
            ),
        ],
    )


def place_order(
    client: APIClient, *, quantity: int = 2, price: str = "12.50", sku: str | None = None
) -> dict[str, Any]:
    """Place (and, with the sandbox's success token, pay) an order through the API: of
    `sku`, or of a new one-variant product priced `price`."""
    if sku is None:
        sku = make_product(stock=10, price=price, name="Blue Mug").sku  # type: ignore[attr-defined]
    response = client.post(
        "/api/orders",
        {"items": [{"id": sku, "quantity": quantity}], "payment_token": "tok_success"},
    )
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body
