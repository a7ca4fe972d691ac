"""Clients generated from the live schema work: Python (openapi-python-client) drives the
shop with its typed functions only, and TypeScript types (openapi-typescript) compile.

A schema that lists a body twice, or lies about a status or a field, shows up here as a
module that fails to import, a body sent form-encoded, or a response that does not parse
into its model.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.contract.conftest import Shop, live_schema
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "shop_client"
# Deliveries to this endpoint would go to a loopback port nobody listens on; it is
# subscribed to an event the test never causes, so none is even attempted.
HOOK_URL = f"http://127.0.0.1:{free_port()}/hooks"
LOOPBACK_WEBHOOKS = {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


@pytest.fixture
def python_client(live_shop: Shop, tmp_path: Path) -> Iterator[ModuleType]:
    """The client package generated from the live schema, imported."""
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(live_schema(live_shop)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"package_name_override": PACKAGE, "post_hooks": []}))
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            *(str(generator), "generate", "--path", str(schema_path), "--config", str(config)),
            *("--meta", "none", "--output-path", str(tmp_path / PACKAGE)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def api(name: str) -> ModuleType:
    """One generated operation module, e.g. `orders.orders_create`."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("live_shop", [LOOPBACK_WEBHOOKS], indirect=True)
def test_the_generated_python_client_drives_the_shop(
    live_shop: Shop, python_client: ModuleType
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    anonymous = python_client.Client(base_url=live_shop.url, raise_on_unexpected_status=True)

    # Register and log in.
    registered = api("users.users_create").sync(
        client=anonymous,
        body=models.RegistrationInputRequest(
            name="Ada Lovelace", email="ada@example.com", password="analytical-engine-1843"
        ),
    )
    assert isinstance(registered, models.UserOutput)
    assert (registered.name, registered.email) == ("Ada Lovelace", "ada@example.com")
    pair = api("auth.auth_token_create").sync(
        client=anonymous,
        body=models.TokenObtainInputRequest(
            email="ada@example.com", password="analytical-engine-1843"
        ),
    )
    assert isinstance(pair, models.TokenPair)
    ada = python_client.AuthenticatedClient(
        base_url=live_shop.url, token=pair.access, raise_on_unexpected_status=True
    )
    me = api("users.users_me_retrieve").sync(client=ada)
    assert isinstance(me, models.AccountOutput)
    assert (me.id, me.roles) == (registered.id, ["customer"])

    # Browse products.
    page = api("products.products_list").sync(
        client=anonymous,
        in_stock=True,
        ordering=models.ProductsListOrdering("-price"),
        page_size=2,
    )
    assert isinstance(page, models.PaginatedProductListOutputList)
    assert [row.sku for row in page.results] == ["HOOD-GRY-M", "CAP-RED"]
    assert (page.count, page.previous) == (4, None)
    assert page.next_ == "/api/products/?in_stock=true&ordering=-price&page=2&page_size=2"
    tee = api("products.products_retrieve").sync(client=anonymous, sku="TEE-BLK-M")
    assert isinstance(tee, models.ProductDetailOutput)
    assert (tee.price, tee.stock, tee.category.slug) == ("7.90", 49, "tees")
    hoodie = api("products.products_retrieve").sync(client=anonymous, sku="HOOD-GRY-L")
    assert isinstance(hoodie, models.ProductDetailOutput)
    assert [(v.sku, v.stock) for v in hoodie.variants] == [("HOOD-GRY-M", 3), ("HOOD-GRY-L", 2)]
    assert {(a.attribute, a.slug) for a in hoodie.variants[1].attributes} == {
        ("colour", "grey"),
        ("size", "l"),
    }

    # Stock per warehouse (a catalog manager): the L hoodie is only in the north, which
    # ships to the Nordics, so an order to Germany cannot have it.
    admin = python_client.AuthenticatedClient(
        base_url=live_shop.url, token=live_shop.tokens["admin"], raise_on_unexpected_status=True
    )
    warehouses = api("warehouses.warehouses_list").sync(client=admin)
    assert [(w.slug, w.zones, w.countries) for w in warehouses] == [
        ("main", [], None),
        ("north", ["nordics"], ["FI", "NO", "SE"]),
    ]
    nordics = api("shipping_zones.shipping_zones_retrieve").sync(client=admin, slug="nordics")
    assert isinstance(nordics, models.ShippingZoneOutput)
    assert (nordics.name, nordics.countries) == ("Nordics", ["FI", "NO", "SE"])
    restocked = api("products.products_stock_create").sync(
        client=admin,
        sku="HOOD-GRY-L",
        body=models.StockChangeInputRequest(
            delta=3, reason=models.StockChangeInputReasonEnum("restock"), warehouse="north"
        ),
    )
    assert isinstance(restocked, models.StockChangeOutput)
    assert (restocked.warehouse, restocked.stock, restocked.total_stock) == ("north", 5, 5)
    variant = api("variants.variants_retrieve").sync(client=admin, sku="HOOD-GRY-L")
    assert isinstance(variant, models.VariantOutput)
    assert (variant.stock, variant.in_stock) == (5, True)
    to_germany = models.OrderCreateInputRequest(
        items=[models.OrderLineInputRequest(id="HOOD-GRY-L", quantity=1)],
        shipping_country="DE",
        payment_token="tok_success",
    )
    refused = api("orders.orders_create").sync(client=ada, body=to_germany)
    assert isinstance(refused, models.OrdersCreateResponse409)
    assert refused.code == "out_of_stock"
    assert [(s.sku, s.requested, s.available) for s in refused.shortfalls] == [("HOOD-GRY-L", 1, 0)]

    # Order with an Idempotency-Key; the retry is the same order.
    key = str(uuid.uuid4())
    body = models.OrderCreateInputRequest(
        items=[models.OrderLineInputRequest(id="TEE-BLK-M", quantity=2)],
        payment_token="tok_success",
    )
    placed = api("orders.orders_create").sync_detailed(client=ada, body=body, idempotency_key=key)
    replay = api("orders.orders_create").sync_detailed(client=ada, body=body, idempotency_key=key)
    assert (placed.status_code, replay.status_code) == (201, 201)
    assert isinstance(placed.parsed, models.OrderOutput)
    assert isinstance(replay.parsed, models.OrderOutput)
    assert replay.parsed.id == placed.parsed.id
    assert replay.headers["Idempotent-Replayed"] == "true"
    order_id = placed.parsed.id
    assert (placed.parsed.total, placed.parsed.items[0].quantity) == ("15.80", 2)

    detail = api("orders.orders_retrieve").sync(client=ada, public_id=order_id)
    assert isinstance(detail, models.OrderDetailOutput)
    assert detail.history[0].to == models.OrderStatusEnum.PENDING_PAYMENT
    cancelled = api("orders.orders_cancel_create").sync(
        client=ada, public_id=order_id, body=models.OrderCancelInputRequest(reason="Twice")
    )
    assert isinstance(cancelled, models.OrderDetailOutput)
    # Paid at once (the sandbox answers in-process), so cancelling starts its refund.
    assert [event.to for event in cancelled.history][:3] == [
        models.OrderStatusEnum.PENDING_PAYMENT,
        models.OrderStatusEnum.PAID,
        models.OrderStatusEnum.REFUNDING,
    ]

    # Notifications: the welcome and the order's own (emails, sent as they happened).
    notifications = api("notifications.notifications_list").sync(client=ada)
    assert isinstance(notifications, models.PaginatedNotificationOutputList)
    events = {n.event.value for n in notifications.results}
    # The refund runs on after the cancel's answer: its notice may or may not be there yet.
    assert events - {"order_refunded"} == {"order_paid", "order_placed", "user_registered"}
    assert {n.recipient for n in notifications.results} == {registered.id}

    # A webhook endpoint: create (the secret is shown once), change, rotate, delete.
    created = api("webhooks.webhooks_create").sync(
        client=ada,
        body=models.WebhookEndpointInputRequest(
            url=HOOK_URL, events=[models.EventsEnum.ORDER_EXPIRED], description="Sync"
        ),
    )
    assert isinstance(created, models.WebhookEndpointWithSecretOutput)
    assert created.secret.startswith("whsec_")
    changed = api("webhooks.webhooks_partial_update").sync(
        client=ada, id=created.id, body=models.PatchedWebhookEndpointInputRequest(active=False)
    )
    assert isinstance(changed, models.WebhookEndpointOutput)
    assert (changed.active, changed.description) == (False, "Sync")
    rotated = api("webhooks.webhooks_rotate_secret_create").sync(client=ada, id=created.id)
    assert isinstance(rotated, models.WebhookEndpointWithSecretOutput)
    assert rotated.secret != created.secret
    listed = api("webhooks.webhooks_list").sync(client=ada)
    assert isinstance(listed, models.PaginatedWebhookEndpointOutputList)
    assert [endpoint.id for endpoint in listed.results] == [created.id]
    deleted = api("webhooks.webhooks_destroy").sync_detailed(client=ada, id=created.id)
    assert deleted.status_code == 204
    gone = api("webhooks.webhooks_retrieve").sync(client=ada, id=created.id)
    assert isinstance(gone, models.Problem)
    assert (gone.status, gone.code) == (404, "webhook_not_found")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_openapi_typescript_types_compile(live_shop: Shop, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the TypeScript check needs Node.js and npm")
    tools = Path(os.environ.get("CONTRACT_NPM_PREFIX", ROOT / "var" / "npm-contract"))
    binaries = tools / "node_modules" / ".bin"
    if not (binaries / "openapi-typescript").exists() or not (binaries / "tsc").exists():
        subprocess.run(
            [
                *(npm, "install", "--prefix", str(tools), "--no-audit", "--no-fund", "--silent"),
                *("openapi-typescript@7.13.0", "typescript@5.9.3"),
            ],
            check=True,
            timeout=300,
        )
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(live_schema(live_shop)))
    types = tmp_path / "shop.d.ts"
    subprocess.run(
        [str(binaries / "openapi-typescript"), str(schema_path), "--output", str(types)],
        check=True,
        timeout=120,
    )
    usage = tmp_path / "usage.ts"
    usage.write_text(
        'import type { components, paths } from "./shop";\n'
        'type Order = components["schemas"]["OrderOutput"];\n'
        'type Place = paths["/api/orders/"]["post"];\n'
        'const body: Place["requestBody"] extends { content: { "application/json": infer B } }'
        ' ? B : never = { items: [{ id: "TEE-BLK-M", quantity: 2 }], payment_token: "t" };\n'
        'const total: Order["total"] = "15.80";\n'
        "export { body, total };\n"
    )
    result = subprocess.run(
        [str(binaries / "tsc"), "--noEmit", "--strict", str(types), str(usage)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
