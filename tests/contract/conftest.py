"""A live shop for the contract tests: gunicorn on 127.0.0.1 over this test's database.

The data is committed (transactional tests), so the server's processes see it; the flush
at the end of each test removes it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.catalog import services as catalog_services
from apps.catalog.models import Attribute, AttributeValue, ProductType, ProductVariant
from apps.inventory import selectors as inventory_selectors
from apps.inventory import services as inventory_services
from apps.inventory.models import Warehouse
from apps.notifications.models import WebhookEndpoint
from apps.orders import services as order_services
from apps.shipping import services as shipping_services
from ecommerce.api.permissions import Role
from tests.servers import GunicornServer, project_env
from tests.users.factories import UserFactory

# The examples in the schema name these, so they work against this shop as written.
CUSTOMER_EMAIL = "customer@example.com"
CUSTOMER_PASSWORD = "demo-shop-2026"


@dataclass(frozen=True)
class Shop:
    url: str
    tokens: dict[str, str]  # role -> access token (no entry: anonymous)
    log_path: Path


METHODS = ("get", "post", "put", "patch", "delete")


def live_schema(shop: Shop) -> dict[str, Any]:
    response = httpx.get(
        f"{shop.url}/api/schema", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operations(schema: dict[str, Any], *, open_to_anonymous: bool) -> list[str]:
    """ "METHOD /path" of every operation that an anonymous caller may (or may not) call:
    its security requirements include the empty one, `{}`, or it has none."""
    names = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            security = operation.get("security", schema.get("security"))
            is_open = not security or {} in security
            if is_open == open_to_anonymous:
                names.append(f"{method.upper()} {path}")
    return names


def open_operations(schema: dict[str, Any]) -> list[str]:
    return operations(schema, open_to_anonymous=True)


def access_token(user: Any, *, hours: int = 2) -> str:
    """An access token that outlives the run (the default lifetime is minutes)."""
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=hours))
    return str(token)


def seed_catalog(admin: Any) -> None:
    """A category tree; a product type with product and variant attributes; one-variant
    products in and out of stock (the tees typed, with a colour and a size); a hoodie in
    two sizes; a second warehouse (serving one zone) holding some of it. The names are the
    ones the schema's examples use."""
    apparel = catalog_services.create_category(name="Apparel", slug="apparel")
    tees = catalog_services.create_category(name="Tees", slug="tees", parent=apparel)
    attributes = {}
    for slug, values in {
        "colour": ("Black", "White", "Grey"),
        "size": ("M", "L"),
        "material": ("Cotton",),
    }.items():
        attribute = Attribute.objects.create(name=slug.title(), slug=slug)
        for order, name in enumerate(values):
            AttributeValue.objects.create(
                attribute=attribute, name=name, slug=name.lower(), sort_order=order
            )
        attributes[slug] = attribute
    t_shirt = ProductType.objects.create(name="T-shirt", slug="t-shirt")
    t_shirt.product_attributes.set([attributes["material"]])
    t_shirt.variant_attributes.set([attributes["colour"], attributes["size"]])
    tee_values = {"TEE-BLK-M": ("black", "m"), "TEE-WHT-L": ("white", "l")}
    for index, (sku, stock) in enumerate(
        [("TEE-BLK-M", 50), ("TEE-WHT-L", 50), ("MUG-1", 0), ("CAP-RED", 5)], start=1
    ):
        colour, size = tee_values.get(sku, ("", ""))
        catalog_services.create_product(
            name=f"Product {index}",
            category=tees if sku in tee_values else apparel,
            product_type=t_shirt if sku in tee_values else None,
            attributes={"material": "cotton"} if sku in tee_values else {},
            variants=[
                catalog_services.VariantSpec(
                    sku=sku,
                    price=Decimal(f"{index * 7}.90"),
                    attributes={"colour": colour, "size": size} if sku in tee_values else {},
                    initial_stock=stock,
                )
            ],
            actor=admin,
        )
    # The default warehouse first (a flushed database has none), so it stays the default.
    inventory_selectors.default_warehouse()
    north = Warehouse.objects.create(name="North", slug="north", priority=200)
    north.shipping_zones.add(
        shipping_services.create_zone(name="Nordics", slug="nordics", countries=["SE", "NO", "FI"])
    )
    catalog_services.create_product(
        name="Hoodie",
        category=apparel,
        product_type=t_shirt,
        attributes={"material": "cotton"},
        variants=[
            catalog_services.VariantSpec(
                sku=f"HOOD-GRY-{size.upper()}",
                name=f"{size.upper()} / Grey",
                price=Decimal(price),
                attributes={"size": size, "colour": "grey"},
                initial_stock=stock,
            )
            for size, price, stock in (("m", "29.90", 3), ("l", "31.90", 0))
        ],
        actor=admin,
    )
    inventory_services.restock(
        variant_id=ProductVariant.objects.get(sku="HOOD-GRY-L").pk,
        quantity=2,
        warehouse=north,
        actor=admin,
    )


def seed_shop() -> dict[str, Any]:
    """Users of each role, a catalog (seed_catalog), an order and a webhook endpoint per
    user: enough for every operation to reach its logic."""
    admin = UserFactory(email="admin@example.com", roles=[Role.ADMIN])
    customer = UserFactory(email=CUSTOMER_EMAIL, password=CUSTOMER_PASSWORD)
    seed_catalog(admin)
    order_services.place_order(
        user=customer,
        lines=[order_services.OrderLine("TEE-BLK-M", 1)],
        payment_token="tok_success",
        idempotency_key="contract-seed",
        fingerprint="",
        placed_by=customer,
    )
    for owner in (admin, customer):
        WebhookEndpoint.objects.create(
            owner=owner,
            url="https://hooks.example.com/shop",
            secret="whsec_" + "A" * 43,
            events=["order_paid"],
        )
    return {"admin": admin, "customer": customer}


@pytest.fixture
def live_shop(
    request: pytest.FixtureRequest, transactional_db: Any, tmp_path: Path
) -> Iterator[Shop]:
    """The seeded shop served by gunicorn; parametrize indirectly to add settings."""
    users = seed_shop()
    metrics = tmp_path / "metrics"
    env = project_env(
        RATE_LIMIT_ENABLED="0",  # exercise the logic behind the limits, not the limits
        OTEL_ENABLED="0",
        ACCESS_LOG="0",
        LOG_LEVEL="WARNING",
        METRICS_DIR=str(metrics),
        PROMETHEUS_MULTIPROC_DIR=str(metrics / "web"),
        WEB_CONCURRENCY="3",
        **getattr(request, "param", {}),
    )
    log_path = tmp_path / "gunicorn.log"
    server = GunicornServer(workers=3, env=env, log_path=log_path)
    try:
        yield Shop(
            url=server.url,
            tokens={role: access_token(user) for role, user in users.items()},
            log_path=log_path,
        )
    finally:
        server.stop()
