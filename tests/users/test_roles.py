"""Each caller kind against each users endpoint: the directory, one account, and /me."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory
from tests.users.helpers import CALLERS, ROLES_MIGRATION, assert_problem

ACCOUNT_KEYS = {"id", "name", "email", "created_at", "date_joined", "is_active", "roles"}
# Who may read the whole directory and any one account.
STAFF_READERS = ("support", "admin", "superuser")


# --- Role groups ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_roles_migration_creates_the_four_role_groups(roles_migration_apps):
    # given: no groups at all, as before the migration (or after a flush)
    Group.objects.all().delete()

    # when
    ROLES_MIGRATION.create_roles(roles_migration_apps, None)

    # then
    assert sorted(Group.objects.values_list("name", flat=True)) == [
        "admin",
        "catalog_manager",
        "customer",
        "support",
    ]
    assert set(ROLES_MIGRATION.ROLES) == {role.value for role in Role}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "codenames"),
    [
        ("customer", []),
        ("support", ["view_user"]),
        ("catalog_manager", []),
        ("admin", ["add_user", "change_user", "delete_user", "view_user"]),
    ],
)
def test_roles_migration_grants_user_permissions(roles_migration_apps, role, codenames):
    # given
    Group.objects.all().delete()

    # when: applied twice, as a re-run must change nothing
    ROLES_MIGRATION.create_roles(roles_migration_apps, None)
    ROLES_MIGRATION.create_roles(roles_migration_apps, None)

    # then
    permissions = Permission.objects.filter(group__name=role, content_type__app_label="users")
    assert sorted(permissions.values_list("codename", flat=True)) == codenames
    assert Group.objects.filter(name=role).count() == 1


@pytest.mark.django_db
def test_roles_migration_reverses_to_no_role_groups(roles_migration_apps):
    # given
    ROLES_MIGRATION.create_roles(roles_migration_apps, None)
    Group.objects.create(name="not-a-role")

    # when
    ROLES_MIGRATION.remove_roles(roles_migration_apps, None)

    # then
    assert list(Group.objects.values_list("name", flat=True)) == ["not-a-role"]


@pytest.mark.django_db
@pytest.mark.usefixtures("role_groups")
def test_support_user_has_the_view_user_permission():
    # given
    support = UserFactory(roles=["support"])

    # then
    assert support.has_perm("users.view_user") is True
    assert support.has_perm("users.change_user") is False


# What inventory.0002 grants on variants, attributes, types, media, stock and zones.
CATALOG_DEPTH_MANAGE = {
    "catalog.add_assignedproductattribute",
    "catalog.add_assignedvariantattribute",
    "catalog.add_attribute",
    "catalog.add_attributevalue",
    "catalog.add_productmedia",
    "catalog.add_producttype",
    "catalog.add_productvariant",
    "catalog.change_assignedproductattribute",
    "catalog.change_assignedvariantattribute",
    "catalog.change_attribute",
    "catalog.change_attributevalue",
    "catalog.change_productmedia",
    "catalog.change_producttype",
    "catalog.change_productvariant",
    "catalog.view_assignedproductattribute",
    "catalog.view_assignedvariantattribute",
    "catalog.view_attribute",
    "catalog.view_attributevalue",
    "catalog.view_productmedia",
    "catalog.view_producttype",
    "catalog.view_productvariant",
    "inventory.add_stock",
    "inventory.add_warehouse",
    "inventory.change_stock",
    "inventory.change_warehouse",
    "inventory.view_stock",
    "inventory.view_stockmovement",
    "inventory.view_warehouse",
    "shipping.add_shippingzone",
    "shipping.change_shippingzone",
    "shipping.view_shippingzone",
}
CATALOG_DEPTH_VIEW = {
    "catalog.view_assignedproductattribute",
    "catalog.view_assignedvariantattribute",
    "catalog.view_attribute",
    "catalog.view_attributevalue",
    "catalog.view_productmedia",
    "catalog.view_producttype",
    "catalog.view_productvariant",
    "inventory.view_stock",
    "inventory.view_stockmovement",
    "inventory.view_warehouse",
    "shipping.view_shippingzone",
}

# What shipping.0003 grants on shipping methods and their rate bands.
SHIPPING_METHODS_MANAGE = {
    f"shipping.{verb}_{model}"
    for model in ("shippingmethod", "shippingrateband")
    for verb in ("add", "change", "delete", "view")
}
SHIPPING_METHODS_VIEW = {"shipping.view_shippingmethod", "shipping.view_shippingrateband"}

# What pricing.0003 grants: tax, vouchers and promotions; voucher uses are view-only.
PRICING_MANAGE = (
    {
        f"pricing.{verb}_{model}"
        for model in ("taxclass", "taxrate", "voucher", "promotion")
        for verb in ("add", "change", "delete", "view")
    }
    | {"pricing.change_taxsettings", "pricing.view_taxsettings"}
    | {"pricing.view_voucheruse"}
)
PRICING_VIEW = {
    f"pricing.view_{model}"
    for model in ("taxclass", "taxrate", "voucher", "promotion", "taxsettings", "voucheruse")
}

# Every permission each role holds once all the role migrations have run. A migration that
# grants something new fails here until this table (and the README's roles) says so.
MIGRATED_GRANTS = {
    "customer": set(),
    "support": {
        "catalog.view_category",
        "catalog.view_product",
        "notifications.view_notification",
        "notifications.view_webhookendpoint",
        "orders.approve_return",
        "orders.receive_return",
        "orders.refund_return",
        "orders.view_order",
        "orders.view_orderevent",
        "orders.view_orderitem",
        "orders.view_return",
        "payments.refund_payment",
        "payments.view_moneymovement",
        "payments.view_payment",
        "payments.view_refund",
        "users.view_user",
    }
    | CATALOG_DEPTH_VIEW
    | SHIPPING_METHODS_VIEW
    | PRICING_VIEW,
    "catalog_manager": {
        "catalog.add_category",
        "catalog.add_product",
        "catalog.change_category",
        "catalog.change_product",
        "catalog.view_category",
        "catalog.view_product",
    }
    | CATALOG_DEPTH_MANAGE
    | SHIPPING_METHODS_MANAGE
    | PRICING_MANAGE,
    "admin": {
        "audit.view_auditevent",
        "catalog.add_category",
        "catalog.add_product",
        "catalog.change_category",
        "catalog.change_product",
        "catalog.view_category",
        "catalog.view_product",
        "notifications.change_notification",
        "notifications.change_webhookendpoint",
        "notifications.view_all_webhook_endpoints",
        "notifications.view_notification",
        "notifications.view_webhookendpoint",
        "orders.cancel_order",
        "orders.change_order",
        "orders.fulfil_order",
        "orders.approve_return",
        "orders.place_order_for_customer",
        "orders.receive_return",
        "orders.refund_order",
        "orders.refund_return",
        "orders.retry_order_payment",
        "orders.view_order",
        "orders.view_orderevent",
        "orders.view_orderitem",
        "orders.view_return",
        "payments.refund_payment",
        "payments.view_moneymovement",
        "payments.view_payment",
        "payments.view_refund",
        "users.add_user",
        "users.change_user",
        "users.delete_user",
        "users.view_user",
    }
    | CATALOG_DEPTH_MANAGE
    | SHIPPING_METHODS_MANAGE
    | PRICING_MANAGE,
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(MIGRATED_GRANTS))
def test_each_role_holds_exactly_the_migrated_permissions(role):
    # given: the groups as the role migrations leave them
    restore_role_groups()

    # when
    held = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(group__name=role).values_list(
            "content_type__app_label", "codename"
        )
    }

    # then
    assert held == MIGRATED_GRANTS[role]


@pytest.mark.django_db
def test_support_is_read_only_and_cannot_order_for_customers():
    # given
    restore_role_groups()
    support = UserFactory(is_staff=True, roles=["support"])

    # then: view permissions, so the admin shows support no form that saves; the one
    # thing support does to money: refund part or all of an order's payment; and deciding
    # and receiving returns (orders 0011): actions, never a model form
    assert {
        name for name in support.get_all_permissions() if not name.split(".")[1].startswith("view_")
    } == {
        "payments.refund_payment",
        "orders.approve_return",
        "orders.receive_return",
        "orders.refund_return",
    }
    assert support.has_perm("orders.place_order_for_customer") is False
    assert support.has_perm("orders.refund_order") is False


# --- GET /api/users ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CALLERS)
def test_user_directory_is_for_support_and_admins(caller, kind):
    # given
    client, user = caller(kind)
    others = [UserFactory(), UserFactory()]

    # when
    response = client.get("/api/users")

    # then
    if kind == "anonymous":
        assert_problem(response, 401, "not_authenticated")
    elif kind in STAFF_READERS:
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"count", "next", "previous", "results"}
        assert page["count"] == 3
        assert [row["id"] for row in page["results"]] == [user.pk, *(o.pk for o in others)]
        assert all(set(row) == ACCOUNT_KEYS for row in page["results"])
    else:
        problem = assert_problem(response, 403, "permission_denied")
        assert problem["detail"] == "You do not have permission to perform this action."


@pytest.mark.django_db
def test_user_directory_rows_show_roles_and_status(client_for):
    # given
    support = UserFactory(email="sue@example.com", name="Sue", roles=["support", "customer"])
    UserFactory(email="zed@example.com", name="Zed", is_active=False)

    # when
    response = client_for(support).get("/api/users/")

    # then
    rows = response.json()["results"]
    assert [(r["email"], r["name"], r["is_active"], r["roles"]) for r in rows] == [
        ("sue@example.com", "Sue", True, ["customer", "support"]),
        ("zed@example.com", "Zed", False, ["customer"]),
    ]


@pytest.mark.django_db
def test_user_directory_is_paginated(client_for):
    # given
    support = UserFactory(roles=["support"])
    UserFactory.create_batch(4)

    # when
    first = client_for(support).get("/api/users", {"page_size": 2})
    last = client_for(support).get("/api/users", {"page_size": 2, "page": 3})

    # then
    assert first.json()["count"] == 5
    assert len(first.json()["results"]) == 2
    assert first.json()["previous"] is None
    assert first.json()["next"].endswith("/api/users?page=2&page_size=2")
    assert len(last.json()["results"]) == 1
    assert last.json()["next"] is None


@pytest.mark.django_db
def test_user_directory_page_past_the_end_is_a_404(client_for):
    # given
    support = UserFactory(roles=["support"])

    # when
    response = client_for(support).get("/api/users", {"page": 9})

    # then
    assert_problem(response, 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alice", ["alice@example.com"]),
        ("ALICE", ["alice@example.com"]),
        ("Brown", ["bob@shop.test", "carol@example.com"]),
        ("shop.test", ["bob@shop.test"]),
        ("nobody", []),
    ],
)
def test_user_directory_search_matches_email_and_name(client_for, term, expected):
    # given
    support = UserFactory(email="sue@staff.test", name="Sue Support", roles=["support"])
    UserFactory(email="alice@example.com", name="Alice Adams")
    UserFactory(email="bob@shop.test", name="Bob Brown")
    UserFactory(email="carol@example.com", name="Carol Brownlee")

    # when
    response = client_for(support).get("/api/users", {"search": term})

    # then
    assert response.status_code == 200
    assert [row["email"] for row in response.json()["results"]] == expected
    assert response.json()["count"] == len(expected)
    assert support.email not in [row["email"] for row in response.json()["results"]]


@pytest.mark.django_db
def test_user_directory_filters_by_activity(client_for):
    # given
    admin = UserFactory(roles=["admin"])
    gone = UserFactory(is_active=False)

    # when
    response = client_for(admin).get("/api/users", {"is_active": "false"})

    # then
    assert [row["id"] for row in response.json()["results"]] == [gone.pk]


# --- GET /api/users/{id} ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CALLERS)
def test_anyone_signed_in_can_read_their_own_account(caller, kind):
    # given
    client, user = caller(kind)
    if user is None:
        user = UserFactory()

    # when
    response = client.get(f"/api/users/{user.pk}")

    # then
    if kind == "anonymous":
        assert_problem(response, 401, "not_authenticated")
    else:
        assert response.status_code == 200
        assert set(response.json()) == ACCOUNT_KEYS
        assert response.json()["id"] == user.pk
        assert response.json()["email"] == user.email


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("path", ["/api/users/{pk}", "/api/users/{pk}/"])
def test_another_account_is_visible_to_staff_readers_only(caller, kind, path):
    # given
    client, _ = caller(kind)
    other = UserFactory(email="other@example.com")

    # when
    response = client.get(path.format(pk=other.pk))

    # then
    if kind == "anonymous":
        assert_problem(response, 401, "not_authenticated")
    elif kind in STAFF_READERS:
        assert response.status_code == 200
        assert response.json()["email"] == "other@example.com"
    else:
        # 404, not 403: a stranger cannot learn which ids exist.
        problem = assert_problem(response, 404, "not_found")
        assert "other@example.com" not in response.content.decode()
        assert problem["detail"] == "Not found."


@pytest.mark.django_db
@pytest.mark.parametrize("pk", ["999999", "99999999999999999999999"])
def test_unknown_account_id_is_a_404_for_staff(client_for, pk):
    # given
    support = UserFactory(roles=["support"])

    # when
    response = client_for(support).get(f"/api/users/{pk}")

    # then
    assert_problem(response, 404, "not_found")


@pytest.mark.django_db
def test_non_numeric_account_id_is_a_404(client_for):
    # given
    support = UserFactory(roles=["support"])

    # when
    response = client_for(support).get("/api/users/abc")

    # then
    problem = assert_problem(response, 404, "not_found")
    assert problem["detail"] == "No resource at /api/users/abc."


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_accounts_cannot_be_changed_through_their_id(client_for, method):
    # given
    admin = UserFactory(roles=["admin"])
    target = UserFactory(name="Unchanged")

    # when
    response = getattr(client_for(admin), method)(
        f"/api/users/{target.pk}", {"name": "Changed"}, format="json"
    )

    # then
    assert_problem(response, 405, "method_not_allowed")
    target.refresh_from_db()
    assert target.name == "Unchanged"
    assert User.objects.filter(pk=target.pk).exists()


# --- GET/PATCH /api/users/me ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize("path", ["/api/users/me", "/api/users/me/"])
def test_me_shows_the_callers_own_account(caller, kind, path):
    # given
    client, user = caller(kind)
    UserFactory()

    # when
    response = client.get(path)

    # then
    if kind == "anonymous":
        assert_problem(response, 401, "not_authenticated")
        return
    assert response.status_code == 200
    expected_roles = {
        "customer": ["customer"],
        "support": ["support"],
        "catalog_manager": ["catalog_manager"],
        "admin": ["admin"],
        "superuser": ["admin", "customer"],
    }[kind]
    assert response.json() == {
        "id": user.pk,
        "name": user.name,
        "email": user.email,
        "created_at": response.json()["created_at"],
        "date_joined": response.json()["created_at"],
        "is_active": True,
        "roles": expected_roles,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CALLERS)
def test_me_patch_changes_the_callers_name(caller, kind):
    # given
    client, user = caller(kind)
    bystander = UserFactory(name="Bystander")

    # when
    response = client.patch("/api/users/me", {"name": "  New Name  "}, format="json")

    # then
    if kind == "anonymous":
        assert_problem(response, 401, "not_authenticated")
        assert User.objects.filter(name="New Name").count() == 0
        return
    assert response.status_code == 200
    assert response.json()["name"] == "New Name"
    user.refresh_from_db()
    assert user.name == "New Name"
    bystander.refresh_from_db()
    assert bystander.name == "Bystander"


@pytest.mark.django_db
def test_me_patch_ignores_email_and_privilege_fields(client_for):
    # given
    user = UserFactory(email="ann@example.com", name="Ann")
    body = {
        "email": "evil@example.com",
        "is_staff": True,
        "is_superuser": True,
        "is_active": False,
        "groups": ["admin"],
        "roles": ["admin"],
    }

    # when
    response = client_for(user).patch("/api/users/me", body, format="json")

    # then
    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    assert response.json()["roles"] == ["customer"]
    user.refresh_from_db()
    assert (user.email, user.name, user.is_staff, user.is_superuser, user.is_active) == (
        "ann@example.com",
        "Ann",
        False,
        False,
        True,
    )
    assert list(user.groups.values_list("name", flat=True)) == ["customer"]
    assert not User.objects.filter(email="evil@example.com").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "error_code"),
    [({"name": ""}, "blank"), ({"name": "n" * 151}, "max_length"), ({"name": None}, "null")],
    ids=["blank", "too-long", "null"],
)
def test_me_patch_with_a_bad_name_changes_nothing(client_for, body, error_code):
    # given
    user = UserFactory(name="Ann")

    # when
    response = client_for(user).patch("/api/users/me", body, format="json")

    # then
    problem = assert_problem(response, 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [("#/name", error_code)]
    user.refresh_from_db()
    assert user.name == "Ann"


@pytest.mark.django_db
def test_me_refuses_other_methods(client_for):
    # given
    user = UserFactory()

    # when
    response = client_for(user).delete("/api/users/me")

    # then
    assert_problem(response, 405, "method_not_allowed")
    assert User.objects.filter(pk=user.pk).exists()
