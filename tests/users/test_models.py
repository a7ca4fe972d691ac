"""The User model and its manager: email as the login, one account whatever the case."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError, connection, transaction

from apps.users import services
from apps.users.exceptions import EmailAlreadyRegistered
from apps.users.models import User, normalize_email
from tests.users.factories import DEFAULT_PASSWORD, UserFactory


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("john@example.com", "john@example.com"),
        ("John@Example.COM", "john@example.com"),
        ("  JOHN@example.com\n", "john@example.com"),
    ],
)
def test_normalize_email_trims_and_lower_cases(raw, stored):
    assert normalize_email(raw) == stored


@pytest.mark.django_db
def test_create_user_stores_the_email_lower_cased():
    # when
    user = User.objects.create_user("John@Example.COM", DEFAULT_PASSWORD, name="John")

    # then
    assert User.objects.get(pk=user.pk).email == "john@example.com"
    assert user.check_password(DEFAULT_PASSWORD)
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert str(user) == "john@example.com"
    assert user.get_full_name() == "John"
    assert user.get_short_name() == "John"


@pytest.mark.django_db
def test_create_user_without_password_has_an_unusable_one():
    # when
    user = User.objects.create_user("john@example.com", name="John")

    # then
    assert user.has_usable_password() is False
    assert authenticate(email="john@example.com", password="") is None


@pytest.mark.django_db
def test_create_superuser_is_staff_and_superuser():
    # when
    user = User.objects.create_superuser("Root@Example.com", DEFAULT_PASSWORD, name="Root")

    # then
    assert (user.email, user.is_staff, user.is_superuser) == ("root@example.com", True, True)


@pytest.mark.django_db
def test_same_email_in_another_case_violates_the_unique_index():
    # given
    User.objects.create_user("john@example.com", name="John")

    # when
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("JOHN@example.com", name="Other John")

    # then
    assert list(User.objects.values_list("name", flat=True)) == ["John"]


@pytest.mark.django_db
def test_check_constraint_refuses_a_mixed_case_update():
    # given
    user = UserFactory(email="john@example.com")

    # when
    with pytest.raises(IntegrityError, match="users_user_email_lowercase"), transaction.atomic():
        User.objects.filter(pk=user.pk).update(email="John@Example.com")

    # then
    assert User.objects.get(pk=user.pk).email == "john@example.com"


@pytest.mark.django_db
def test_check_constraint_refuses_a_raw_mixed_case_insert():
    # when
    with (
        pytest.raises(IntegrityError, match="users_user_email_lowercase"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO users_user (password, is_superuser, email, name, is_active, is_staff,"
            " date_joined) VALUES ('!', false, 'John@Example.com', 'John', true, false, now())"
        )

    # then
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["john@example.com", "JOHN@EXAMPLE.COM", " John@Example.com "])
def test_natural_key_and_authenticate_match_any_case(typed):
    # given
    user = UserFactory(email="john@example.com")

    # then
    assert User.objects.get_by_natural_key(typed) == user
    assert authenticate(email=typed, password=DEFAULT_PASSWORD) == user
    assert authenticate(username=typed, password=DEFAULT_PASSWORD) == user


@pytest.mark.django_db
def test_clean_lower_cases_the_email():
    # given
    user = User(email="Jane@Example.com", name="Jane")

    # when
    user.clean()

    # then
    assert user.email == "jane@example.com"


@pytest.mark.django_db
def test_register_user_refuses_an_existing_email_in_another_case():
    # given
    first = services.register_user(email="john@example.com", name="John")

    # when
    with pytest.raises(EmailAlreadyRegistered) as refusal:
        services.register_user(email="John@EXAMPLE.com", name="Other John", password=None)

    # then
    assert refusal.value.code == "email_taken"
    assert list(User.objects.all()) == [first]
    assert list(first.groups.values_list("name", flat=True)) == ["customer"]


@pytest.mark.django_db
def test_update_profile_changes_only_the_name():
    # given
    user = UserFactory(email="ann@example.com", name="Ann")

    # when
    services.update_profile(user=user, name="  Ann Other ")

    # then
    user.refresh_from_db()
    assert (user.email, user.name) == ("ann@example.com", "Ann Other")
