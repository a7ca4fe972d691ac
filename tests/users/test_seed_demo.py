"""`manage.py seed_demo`: two demo accounts, created once, credentials printed once."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from apps.users.demo import EMBEDDED_DEMO_PASSWORD
from apps.users.models import User


def seed_demo() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_password(output: str, email: str) -> str:
    match = re.search(rf"^\s+\w+\s+{re.escape(email)} / (\S+)$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


def account_lines(output: str) -> list[str]:
    """The users app's lines of the output (other apps print their own demo data)."""
    return [line for line in output.splitlines() if "@example.com" in line]


def roles(user: User) -> list[str]:
    return list(user.groups.order_by("name").values_list("name", flat=True))


@pytest.mark.django_db
def test_seed_demo_creates_an_admin_and_a_customer_with_the_given_password(settings):
    # given
    settings.DEMO_PASSWORD = "given-demo-passphrase"

    # when
    output = seed_demo()

    # then
    assert output.startswith("Demo data:\n")
    assert account_lines(output) == [
        "  admin     admin@example.com / given-demo-passphrase",
        "  customer  customer@example.com / given-demo-passphrase",
    ]
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "admin@example.com",
        "customer@example.com",
    ]
    admin = User.objects.get(email="admin@example.com")
    customer = User.objects.get(email="customer@example.com")
    assert (admin.name, admin.is_staff, admin.is_superuser, roles(admin)) == (
        "Demo Admin",
        True,
        True,
        ["admin"],
    )
    assert (customer.name, customer.is_staff, customer.is_superuser, roles(customer)) == (
        "Demo Customer",
        False,
        False,
        ["customer"],
    )
    assert authenticate(email="admin@example.com", password="given-demo-passphrase") == admin
    assert authenticate(email="customer@example.com", password="given-demo-passphrase") == customer


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_keeps_the_first_passwords(settings):
    # given
    settings.DEMO_PASSWORD = ""
    settings.DEBUG = False
    first = seed_demo()
    admin_password = printed_password(first, "admin@example.com")
    customer_password = printed_password(first, "customer@example.com")

    # when
    second = seed_demo()

    # then
    assert account_lines(second) == [
        "  admin     admin@example.com (exists; password unchanged)",
        "  customer  customer@example.com (exists; password unchanged)",
    ]
    assert admin_password not in second
    assert User.objects.count() == 2
    assert roles(User.objects.get(email="admin@example.com")) == ["admin"]
    assert roles(User.objects.get(email="customer@example.com")) == ["customer"]
    assert authenticate(email="admin@example.com", password=admin_password) is not None
    assert authenticate(email="customer@example.com", password=customer_password) is not None


@pytest.mark.django_db
def test_seed_demo_outside_debug_invents_a_password_that_is_not_the_documented_one(settings):
    # given
    settings.DEMO_PASSWORD = ""
    settings.DEBUG = False

    # when
    output = seed_demo()

    # then
    admin_password = printed_password(output, "admin@example.com")
    customer_password = printed_password(output, "customer@example.com")
    assert EMBEDDED_DEMO_PASSWORD not in output
    assert len(admin_password) >= 16
    assert admin_password != customer_password
    assert authenticate(email="admin@example.com", password=admin_password) is not None


@pytest.mark.django_db
def test_seed_demo_in_debug_uses_the_documented_password(settings):
    # given
    settings.DEMO_PASSWORD = ""
    settings.DEBUG = True

    # when
    output = seed_demo()

    # then
    assert printed_password(output, "admin@example.com") == EMBEDDED_DEMO_PASSWORD
    assert authenticate(email="customer@example.com", password=EMBEDDED_DEMO_PASSWORD) is not None


@pytest.mark.django_db
def test_seed_demo_leaves_an_existing_demo_account_alone(settings):
    # given: someone already registered the customer address, in another case
    settings.DEMO_PASSWORD = "given-demo-passphrase"
    existing = User.objects.create_user("Customer@Example.com", "their-own-passphrase", name="Real")

    # when
    output = seed_demo()

    # then
    assert account_lines(output) == [
        "  admin     admin@example.com / given-demo-passphrase",
        "  customer  customer@example.com (exists; password unchanged)",
    ]
    existing.refresh_from_db()
    assert existing.name == "Real"
    assert existing.check_password("their-own-passphrase")
    assert User.objects.count() == 2
