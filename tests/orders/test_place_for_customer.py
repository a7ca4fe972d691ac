"""Placing an order on a customer's behalf (`user_id`) takes the explicit
`orders.place_order_for_customer` permission: being support is not enough."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from apps.audit.models import AuditEvent
from apps.orders.models import Order
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.helpers import stock_of
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

MIGRATION = import_module("apps.orders.migrations.0003_role_action_permissions")


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


def place_for(client: Any, customer: User) -> Any:
    body = {"items": [{"id": "p1", "quantity": 2}], "payment_token": "tok_success"}
    return client.post("/api/orders", {**body, "user_id": customer.pk}, format="json")


def place_for_customer_permission() -> Permission:
    return Permission.objects.get(
        content_type__app_label="orders", codename="place_order_for_customer"
    )


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.CATALOG_MANAGER, Role.CUSTOMER])
def test_without_the_permission_staff_cannot_order_for_a_customer(client_for, role):
    # given
    product = make_product(sku="p1", stock=5)
    staff, customer = UserFactory(is_staff=True, roles=[role]), UserFactory()

    # when
    response = place_for(client_for(staff), customer)

    # then
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "You can only place orders for yourself."
    assert Order.objects.count() == 0
    assert stock_of(product.variant.pk) == 5


def test_support_granted_the_permission_orders_for_a_customer(client_for):
    # given
    product = make_product(sku="p1", stock=5)
    support, customer = UserFactory(is_staff=True, roles=[Role.SUPPORT]), UserFactory()
    support.user_permissions.add(place_for_customer_permission())

    # when
    response = place_for(client_for(support), customer)

    # then
    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert (order.user, order.placed_by) == (customer, support)
    assert response.json()["user_id"] == customer.pk
    assert stock_of(product.variant.pk) == 3
    # a staff change: one audit event, by support, through the API
    (event,) = AuditEvent.objects.all()
    assert (event.actor, event.source, event.action, event.object_id) == (
        support,
        "api",
        "order.placed_for_customer",
        str(order.pk),
    )
    assert event.changes["customer"] == {"before": None, "after": customer.email}


def test_a_group_granted_the_permission_lets_its_support_members_order_for_customers(
    client_for,
):
    # given: the way an administrator gives the right to a team of support staff
    make_product(sku="p1", stock=5)
    desk = Group.objects.create(name="order-desk")
    desk.permissions.add(place_for_customer_permission())
    clerk, customer = UserFactory(is_staff=True, roles=[Role.SUPPORT]), UserFactory()
    clerk.groups.add(desk)

    # when
    response = place_for(client_for(clerk), customer)

    # then
    assert response.status_code == 201, response.content
    assert Order.objects.get().placed_by == clerk


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("customer", False),
        ("support", False),
        ("catalog_manager", False),
        ("admin", True),
    ],
)
def test_the_migration_grants_the_permission_to_the_admin_role_only(role, granted):
    # when: as migrated (restored by the autouse fixture)
    codenames = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    # then
    assert ("place_order_for_customer" in codenames) is granted
    assert dict(MIGRATION.GRANTS) == {
        "admin": (
            ("orders", "place_order_for_customer"),
            ("orders", "cancel_order"),
            ("orders", "refund_order"),
            ("orders", "fulfil_order"),
            ("orders", "retry_order_payment"),
        )
    }


def test_a_superuser_orders_for_a_customer_without_any_group(client_for):
    # given
    make_product(sku="p1", stock=5)
    boss = UserFactory(is_staff=True, is_superuser=True, roles=[])
    customer = UserFactory()

    # when
    response = place_for(client_for(boss), customer)

    # then
    assert response.status_code == 201
    assert Order.objects.get().placed_by == boss
