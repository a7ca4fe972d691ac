"""Django admin for accounts: email login, search, role filters, the add and change forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.test import Client

from apps.users.admin import UserAdmin
from apps.users.models import User
from tests.users.factories import DEFAULT_PASSWORD, UserFactory

# The admin's permission checks read the role groups' permissions.
pytestmark = pytest.mark.usefixtures("role_groups")

CHANGELIST = "/admin/users/user/"
NEW_PASSWORD = "violet-kettle-orbit-42"


def log_in(client: Client, username: str, password: str = DEFAULT_PASSWORD) -> Any:
    return client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )


def listed_emails(response: Any) -> list[str]:
    return [user.email for user in response.context["cl"].result_list]


@pytest.fixture
def staff_admin(client: Client) -> Client:
    """A client logged into the admin as a staff member of the `admin` group."""
    user = UserFactory(email="boss@example.com", is_staff=True, roles=["admin"])
    client.force_login(user)
    return client


# --- Login ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["boss@example.com", "Boss@Example.COM", "BOSS@EXAMPLE.COM"])
def test_staff_logs_into_the_admin_with_their_email_in_any_case(client, typed):
    # given
    staff = UserFactory(email="boss@example.com", is_staff=True, roles=["admin"])

    # when
    response = log_in(client, typed)

    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session[SESSION_KEY] == str(staff.pk)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_login_page_asks_for_the_email(client):
    # when
    response = client.get("/admin/login/")

    # then
    assert response.status_code == 200
    assert response.context["form"].fields["username"].label == "Email address"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "password"),
    [
        ({"is_staff": True, "roles": ["admin"]}, "wrong-password-123"),
        ({"is_staff": False, "roles": ["customer"]}, DEFAULT_PASSWORD),
        ({"is_staff": True, "is_active": False, "roles": ["admin"]}, DEFAULT_PASSWORD),
    ],
    ids=["wrong-password", "not-staff", "inactive-staff"],
)
def test_admin_login_is_refused(client, fields, password):
    # given
    UserFactory(email="boss@example.com", **fields)

    # when
    response = log_in(client, "boss@example.com", password)

    # then
    assert response.status_code == 200
    assert list(response.context["form"].errors["__all__"]) == [
        "Please enter the correct email address and password for a staff account. "
        "Note that both fields may be case-sensitive."
    ]
    assert SESSION_KEY not in client.session
    assert client.get("/admin/").status_code == 302


# --- Changelist -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_changelist_lists_users_ordered_by_email_with_their_roles(staff_admin):
    # given
    UserFactory(email="zoe@example.com", roles=["customer", "support"])
    UserFactory(email="amy@example.com")

    # when
    response = staff_admin.get(CHANGELIST)

    # then
    assert response.status_code == 200
    assert listed_emails(response) == ["amy@example.com", "boss@example.com", "zoe@example.com"]
    assert "customer, support" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("amy", ["amy@example.com"]),
        ("AMY@EXAMPLE", ["amy@example.com"]),
        ("Pond", ["amy@example.com", "rory@example.com"]),
        ("nobody", []),
    ],
)
def test_changelist_searches_email_and_name(staff_admin, term, expected):
    # given
    UserFactory(email="amy@example.com", name="Amy Pond")
    UserFactory(email="rory@example.com", name="Rory Pond")
    UserFactory(email="clara@example.com", name="Clara Oswald")

    # when
    response = staff_admin.get(CHANGELIST, {"q": term})

    # then
    assert response.status_code == 200
    assert listed_emails(response) == expected


@pytest.mark.django_db
def test_changelist_filters_by_role(staff_admin):
    # given
    UserFactory(email="sue@example.com", roles=["support"])
    UserFactory(email="cat@example.com", roles=["catalog_manager", "support"])
    UserFactory(email="amy@example.com")
    support = Group.objects.get(name="support")

    # when
    response = staff_admin.get(CHANGELIST, {"groups__id__exact": support.pk})

    # then
    assert response.status_code == 200
    assert listed_emails(response) == ["cat@example.com", "sue@example.com"]


@pytest.mark.django_db
def test_changelist_filters_by_activity(staff_admin):
    # given
    UserFactory(email="gone@example.com", is_active=False)
    UserFactory(email="here@example.com")

    # when
    response = staff_admin.get(CHANGELIST, {"is_active__exact": "0"})

    # then
    assert listed_emails(response) == ["gone@example.com"]


@pytest.mark.django_db
def test_support_staff_can_view_but_not_add_users(client):
    # given
    support = UserFactory(email="sue@example.com", is_staff=True, roles=["support"])
    client.force_login(support)

    # when
    changelist = client.get(CHANGELIST)
    add_form = client.get(f"{CHANGELIST}add/")

    # then
    assert changelist.status_code == 200
    assert listed_emails(changelist) == ["sue@example.com"]
    assert add_form.status_code == 403


@pytest.mark.django_db
def test_roles_column_joins_group_names_in_order():
    # given
    user = UserFactory(roles=["support", "catalog_manager", "customer"])

    # then
    assert UserAdmin(User, admin.site).roles(user) == "catalog_manager, customer, support"


# --- Add and change forms ---------------------------------------------------------------------


@pytest.mark.django_db
def test_add_form_creates_a_user_with_a_lower_cased_email(staff_admin):
    # given
    form = {
        "email": "New.Person@Example.COM",
        "name": "New Person",
        "usable_password": "true",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "_save": "Save",
    }

    # when
    response = staff_admin.post(f"{CHANGELIST}add/", form)

    # then
    assert response.status_code == 302
    user = User.objects.get(name="New Person")
    assert user.email == "new.person@example.com"
    assert user.check_password(NEW_PASSWORD)
    assert log_in(Client(), "NEW.PERSON@example.com", NEW_PASSWORD).status_code == 200  # not staff


@pytest.mark.django_db
def test_add_form_can_create_a_user_without_a_password(staff_admin):
    # given
    form = {"email": "nopass@example.com", "name": "No Pass", "usable_password": "false"}

    # when
    response = staff_admin.post(f"{CHANGELIST}add/", form)

    # then
    assert response.status_code == 302
    assert User.objects.get(email="nopass@example.com").has_usable_password() is False


@pytest.mark.django_db
def test_add_form_refuses_an_existing_email_in_another_case(staff_admin):
    # given
    UserFactory(email="amy@example.com", name="Amy")
    form = {
        "email": "AMY@example.com",
        "name": "Second Amy",
        "usable_password": "true",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }

    # when
    response = staff_admin.post(f"{CHANGELIST}add/", form)

    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["email"]
    assert User.objects.count() == 2
    assert not User.objects.filter(name="Second Amy").exists()


@pytest.mark.django_db
def test_change_form_lower_cases_the_email_and_sets_roles(staff_admin):
    # given
    user = UserFactory(email="amy@example.com", name="Amy")
    support = Group.objects.get(name="support")
    form = {
        "email": "Amy.Pond@Example.com",
        "name": "Amy Pond",
        "is_active": "on",
        "groups": [support.pk],
        "_save": "Save",
    }

    # when
    response = staff_admin.post(f"{CHANGELIST}{user.pk}/change/", form)

    # then
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.name, user.is_staff) == ("amy.pond@example.com", "Amy Pond", False)
    assert list(user.groups.values_list("name", flat=True)) == ["support"]
    assert user.check_password(DEFAULT_PASSWORD)


# --- No escalation past the roles --------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_cannot_make_itself_a_superuser_or_grant_itself_permissions(staff_admin):
    # given
    boss = User.objects.get(email="boss@example.com")
    admin_group = Group.objects.get(name="admin")
    any_permission = admin_group.permissions.model.objects.order_by("pk").first()
    form = {
        "email": "boss@example.com",
        "name": "Boss",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "groups": [admin_group.pk],
        "user_permissions": [any_permission.pk],
        "_save": "Save",
    }

    # when
    response = staff_admin.post(f"{CHANGELIST}{boss.pk}/change/", form)

    # then: the form saved what the role may change and ignored the rest
    assert response.status_code == 302
    boss.refresh_from_db()
    assert (boss.is_superuser, boss.user_permissions.count()) == (False, 0)
    assert list(boss.groups.values_list("name", flat=True)) == ["admin"]


@pytest.mark.django_db
def test_an_admin_cannot_change_delete_or_reset_the_password_of_a_superuser(staff_admin):
    # given
    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)

    # when
    change = staff_admin.post(
        f"{CHANGELIST}{root.pk}/change/",
        {"email": "mine@example.com", "name": "x", "is_active": "on", "_save": "Save"},
    )
    password = staff_admin.post(
        f"{CHANGELIST}{root.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    delete = staff_admin.post(f"{CHANGELIST}{root.pk}/delete/", {"post": "yes"})

    # then
    assert (change.status_code, password.status_code, delete.status_code) == (403, 403, 403)
    root.refresh_from_db()
    assert root.email == "root@example.com"
    assert root.check_password(DEFAULT_PASSWORD)


@pytest.mark.django_db
def test_a_superuser_still_grants_the_superuser_flag(client):
    # given
    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(root)
    user = UserFactory(email="amy@example.com", name="Amy")

    # when
    response = client.post(
        f"{CHANGELIST}{user.pk}/change/",
        {
            "email": "amy@example.com",
            "name": "Amy",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)
