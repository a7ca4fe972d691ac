"""One convention per kind of thing, on every operation of the published schema.

Walked from the OpenAPI document, so an operation added tomorrow is held to the same:
- every list refuses an `ordering` it does not know (a 400 naming `#/ordering`), also a
  list with a fixed order, and accepts every value its schema publishes;
- every 201 that says where the new resource is (`Location`) documents the header, and
  the header is one of the schema's path templates (with its trailing slash);
- the creation time is `created_at` in every response schema (`date_joined` only as a
  deprecated copy), and a product's category has one shape in the list and the detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.notifications.models import Notification
from apps.orders import services as orders_services
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.pricing.factories import make_voucher
from tests.shipping.factories import make_zone
from tests.users.factories import UserFactory

PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")
# A well-formed value of each query parameter that some list requires.
REQUIRED_QUERY = {"country": "DE", "currency": "EUR", "subtotal": "10.00", "weight_grams": "100"}


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def is_list(schema: dict[str, Any], operation: dict[str, Any]) -> bool:
    """A GET whose answer is an array, or a page of `results`."""
    content = operation["responses"].get("200", {}).get("content", {})
    body = content.get("application/json", {}).get("schema")
    if body is None:
        return False
    body = resolve(schema, body)
    return body.get("type") == "array" or "results" in body.get("properties", {})


def template_pattern(template: str) -> re.Pattern[str]:
    """The paths a schema template names: each `{parameter}` one non-empty segment."""
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("[^/]+".join(map(re.escape, parts)))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    document: dict[str, Any] = json.loads(response.content)
    return document


@pytest.fixture
def admin(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(roles=[Role.ADMIN]))


@pytest.fixture
def customer_client(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(roles=[Role.CUSTOMER]))


def assert_problem(response: Any, status: int, where: str) -> dict[str, Any]:
    assert response.status_code == status, (where, response.status_code, response.content[:300])
    assert response["Content-Type"] == PROBLEM, where
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status, where
    return body


# --- ordering -----------------------------------------------------------------------------


@pytest.fixture
def list_urls(admin: APIClient) -> Callable[[str], str]:
    """A real address for each list's path parameters: the lists answer, not 404."""
    make_product(sku="TEE", stock=5)
    make_zone("nordics", ["SE"])
    make_voucher("SAVE10")
    token = admin.post("/api/carts/").json()["token"]
    order, _ = orders_services.place_order(
        user=UserFactory(), lines=[orders_services.OrderLine("TEE", 1)], payment_token="tok"
    )
    values = {
        "sku": "TEE",
        "slug": "nordics",
        "code": "SAVE10",
        "token": token,
        "order_id": str(order.public_id),
        "public_id": str(order.public_id),
    }

    def url(path: str) -> str:
        return re.sub(r"\{([^}]+)\}", lambda match: values[match.group(1)], path)

    return url


def _required(operation: dict[str, Any]) -> dict[str, str]:
    return {
        parameter["name"]: REQUIRED_QUERY[parameter["name"]]
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter.get("required")
    }


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["nonsense", "-nonsense", "created_at,nonsense", "", " "])
def test_an_unknown_ordering_is_a_400_on_every_list(
    schema: dict[str, Any], admin: APIClient, list_urls: Callable[[str], str], value: str
) -> None:
    walked = 0
    for path, method, operation in operations(schema):
        if method != "get" or not is_list(schema, operation):
            continue
        url = list_urls(path)
        published = {
            parameter["name"]: parameter for parameter in operation.get("parameters", [])
        }.get("ordering")
        if published is not None and value in published["schema"]["enum"]:
            continue
        where = f"GET {path}?ordering={value!r}"
        assert admin.get(url, _required(operation)).status_code == 200, where
        response = admin.get(url, {**_required(operation), "ordering": value})
        body = assert_problem(response, 400, where)
        assert [error["pointer"] for error in body["errors"]] == ["#/ordering"], where
        walked += 1
    assert walked >= 19


@pytest.mark.django_db
def test_every_published_ordering_is_accepted(
    schema: dict[str, Any], admin: APIClient, list_urls: Callable[[str], str]
) -> None:
    walked = 0
    for path, method, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if method != "get" or parameter["name"] != "ordering":
                continue
            for value in parameter["schema"]["enum"]:
                response = admin.get(list_urls(path), {**_required(operation), "ordering": value})
                assert response.status_code == 200, (path, value, response.content[:300])
                walked += 1
    assert walked >= 20


@pytest.mark.django_db
def test_users_are_ordered_by_created_at_as_by_the_deprecated_date_joined(
    admin: APIClient,
) -> None:
    User.objects.all().delete()
    emails = ["c@example.com", "a@example.com", "b@example.com"]
    for email in emails:
        UserFactory(email=email, roles=[Role.CUSTOMER])
    staff = UserFactory(email="staff@example.com", roles=[Role.ADMIN])
    client = APIClient()
    client.force_authenticate(staff)

    def order_of(ordering: str) -> list[str]:
        response = client.get("/api/users", {"ordering": ordering})
        assert response.status_code == 200, response.content
        return [row["email"] for row in response.json()["results"]]

    assert order_of("created_at") == [*emails, "staff@example.com"]
    assert order_of("-created_at") == ["staff@example.com", *reversed(emails)]
    assert order_of("date_joined") == order_of("created_at")
    assert order_of("-date_joined") == order_of("-created_at")


# --- Location -----------------------------------------------------------------------------


def created_with_location(schema: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, method, operation in operations(schema)
        if "Location" in operation["responses"].get("201", {}).get("headers", {})
    }


def creations(schema: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, method, operation in operations(schema)
        if "201" in operation["responses"]
    }


# The creations whose answer needs more than a body to set up: each has its own test of
# the exact Location, and is in the schema walk below.
CREATED_ELSEWHERE = {
    "POST /api/carts/{token}/checkout/": "tests/checkout/test_checkout.py",
    "POST /api/products/{sku}/media/": "tests/catalog/test_media.py",
    # A return needs a fulfilled order.
    "POST /api/orders/{order_id}/returns/": "tests/orders/test_returns_api.py",
    # A return's refund needs a received return of a paid order.
    "POST /api/orders/{order_id}/returns/{return_id}/refund/": (
        "tests/payments/test_return_refunds.py"
    ),
    "POST /api/orders/{public_id}/refunds/": "tests/payments/test_refunds.py",
}
# Created resources with no address of their own: no Location.
WITHOUT_LOCATION = {
    # A category is read in the tree (`GET /api/categories/`); it has no page of its own.
    "POST /api/categories/",
    # A choice value lives inside its attribute (`GET /api/attributes/{slug}/`).
    "POST /api/attributes/{slug}/values/",
}


def _create(admin: APIClient, customer: APIClient) -> Iterator[tuple[str, Any]]:
    """Every creation of the API, in an order where each finds what it needs."""
    yield (
        "POST /api/users/",
        APIClient().post("/api/users/", {"name": "Ada", "email": "ada@example.com"}, format="json"),
    )
    yield (
        "POST /api/categories/",
        admin.post("/api/categories/", {"name": "Tees", "slug": "tees"}, format="json"),
    )
    yield (
        "POST /api/attributes/",
        admin.post(
            "/api/attributes/",
            {"name": "Fit", "slug": "fit", "values": [{"name": "Slim"}]},
            format="json",
        ),
    )
    yield (
        "POST /api/attributes/{slug}/values/",
        admin.post("/api/attributes/fit/values/", {"values": [{"name": "Relaxed"}]}, format="json"),
    )
    yield (
        "POST /api/product-types/",
        admin.post("/api/product-types/", {"name": "Mug", "slug": "mug"}, format="json"),
    )
    yield (
        "POST /api/products/",
        admin.post(
            "/api/products/",
            {"sku": "Kettle-9", "name": "Kettle", "price": "24.90", "category": "tees", "stock": 3},
            format="json",
        ),
    )
    yield (
        "POST /api/products/{sku}/variants/",
        admin.post(
            "/api/products/Kettle-9/variants/",
            {"sku": "Kettle-10", "name": "Kettle, red", "price": "25.90"},
            format="json",
        ),
    )
    yield (
        "POST /api/shipping-zones/",
        admin.post(
            "/api/shipping-zones/",
            {"name": "DACH", "slug": "dach", "countries": ["DE"]},
            format="json",
        ),
    )
    yield (
        "POST /api/shipping-zones/{slug}/methods/",
        admin.post(
            "/api/shipping-zones/dach/methods/",
            {"name": "Standard", "price": "4.90", "currency": "EUR"},
            format="json",
        ),
    )
    yield (
        "POST /api/warehouses/",
        admin.post(
            "/api/warehouses/", {"name": "North", "slug": "north", "zones": ["dach"]}, format="json"
        ),
    )
    yield (
        "POST /api/users/me/addresses/",
        customer.post(
            "/api/users/me/addresses/",
            {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "street_address_1": "12 Analytical Row",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
            format="json",
        ),
    )
    yield (
        "POST /api/webhooks/",
        customer.post(
            "/api/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["order_paid"]}
        ),
    )
    yield "POST /api/carts/", customer.post("/api/carts/")
    yield (
        "POST /api/orders/",
        customer.post(
            "/api/orders/",
            {"items": [{"id": "Kettle-9", "quantity": 1}], "payment_token": "tok_success"},
            format="json",
        ),
    )


@pytest.mark.django_db
def test_every_creation_says_where_the_resource_is_as_the_schema_writes_it(
    schema: dict[str, Any], admin: APIClient, customer_client: APIClient, settings: Any
) -> None:
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    templates = {path: template_pattern(path) for path in schema["paths"]}
    documented = created_with_location(schema)
    walked: set[str] = set()
    for operation, response in _create(admin, customer_client):
        assert response.status_code == 201, (operation, response.content[:300])
        walked.add(operation)
        location = response.headers.get("Location")
        if operation in WITHOUT_LOCATION:
            assert location is None, operation
            assert operation not in documented, operation
            continue
        assert operation in documented, f"{operation} sends Location; the schema does not say"
        assert location is not None, f"{operation}: the schema documents a Location it lacks"
        matches = [path for path, pattern in templates.items() if pattern.fullmatch(location)]
        assert matches, f"{operation}: {location} is no path of the schema"
        [template] = matches
        if "get" in schema["paths"][template]:
            client = customer_client if operation.endswith(("addresses/", "webhooks/")) else admin
            if operation in ("POST /api/carts/", "POST /api/orders/"):
                client = customer_client
            assert client.get(location).status_code == 200, (operation, location)
    # Every creation of the schema is walked here or has its own test.
    assert walked | set(CREATED_ELSEWHERE) == creations(schema)
    assert set(CREATED_ELSEWHERE) <= documented


@pytest.mark.django_db
def test_no_schema_path_lacks_its_trailing_slash(schema: dict[str, Any]) -> None:
    assert [path for path in schema["paths"] if not path.endswith("/")] == []


# --- Names and shapes ---------------------------------------------------------------------


def response_schemas(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each component used in a response (the `...Request` components are inputs)."""
    for name, component in schema["components"]["schemas"].items():
        if not name.endswith("Request"):
            yield name, component


def test_the_creation_time_is_created_at_in_every_response(schema: dict[str, Any]) -> None:
    creation_names = {"date_joined", "joined_at", "created", "created_on", "inserted_at"}
    odd = {
        (name, field): properties[field].get("deprecated", False)
        for name, component in response_schemas(schema)
        for properties in [component.get("properties", {})]
        for field in properties
        if field in creation_names
    }
    # `date_joined` remains for one release, deprecated, beside `created_at`.
    assert odd == {("UserOutput", "date_joined"): True, ("AccountOutput", "date_joined"): True}
    for name in ("UserOutput", "AccountOutput"):
        assert "created_at" in schema["components"]["schemas"][name]["properties"]


def test_a_products_category_has_one_shape_in_list_and_detail(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    shapes = {
        name: components[name]["properties"]["category"]
        for name in ("ProductListOutput", "ProductDetailOutput")
    }
    assert shapes["ProductListOutput"] == shapes["ProductDetailOutput"]
    ref = resolve(schema, shapes["ProductListOutput"]["allOf"][0])
    assert set(ref["properties"]) == {"id", "slug", "name"}


@pytest.mark.django_db
def test_a_products_category_reads_the_same_in_list_and_detail(api_client: APIClient) -> None:
    from apps.catalog.models import Category

    tees = Category.objects.create(name="Tees", slug="tees")
    make_product(sku="TEE", stock=1, category=tees)

    [row] = api_client.get("/api/products").json()["results"]
    detail = api_client.get("/api/products/TEE").json()

    assert row["category"] == detail["category"] == {"id": tees.pk, "slug": "tees", "name": "Tees"}


# --- Notifications ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_notification_shows_its_delivery_id_and_its_orders_public_id(
    admin: APIClient,
) -> None:
    from apps.orders.models import Order

    product = make_product(sku="TEE", stock=2)
    buyer = UserFactory(roles=[Role.CUSTOMER])
    client = APIClient()
    client.force_authenticate(buyer)
    placed = client.post(
        "/api/orders",
        {"items": [{"id": product.pk, "quantity": 1}], "payment_token": "tok_success"},
    )
    assert placed.status_code == 201, placed.content
    order = Order.objects.get(public_id=placed.json()["id"])
    notification = Notification.objects.create(
        recipient=buyer, channel="email", event="order_placed", subject=f"order:{order.pk}"
    )
    welcome = Notification.objects.create(
        recipient=buyer, channel="email", event="user_registered", subject=f"user:{buyer.pk}"
    )

    listed = {row["id"]: row for row in admin.get("/api/notifications").json()["results"]}
    detail = admin.get(f"/api/notifications/{notification.pk}").json()

    for row in (listed[notification.pk], detail):
        assert row["public_id"] == str(notification.public_id)
        assert row["subject"] == f"order:{order.public_id}"
    assert listed[welcome.pk]["subject"] == f"user:{buyer.pk}"
