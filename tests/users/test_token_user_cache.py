"""The user behind a JWT is read through a short cache (apps/users/authentication.py):
warm requests read no user row, and every change that matters (deactivation, password,
roles) applies to the very next request, however it is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.users.authentication import cached_user
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.users.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.helpers import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)

Clients = Callable[[Any], APIClient]


def create_category(client: APIClient, slug: str) -> Any:
    return client.post("/api/categories", {"name": slug.title(), "slug": slug}, format="json")


def test_a_warm_token_request_reads_no_user_row(
    client_for: Clients, django_assert_num_queries: Any
) -> None:
    product = make_product(sku="mug", stock=3)
    client = client_for(UserFactory())
    assert client.get(f"/api/products/{product.pk}").status_code == 200  # user and product cached

    with django_assert_num_queries(0):
        response = client.get(f"/api/products/{product.pk}")

    assert response.status_code == 200


@pytest.mark.parametrize("how", ["save", "queryset-update"])
def test_a_deactivated_users_token_is_refused_at_once(client_for: Clients, how: str) -> None:
    user = UserFactory()
    client = client_for(user)
    assert client.get("/api/users/me").status_code == 200

    if how == "save":
        user.is_active = False
        user.save(update_fields=["is_active"])
    else:
        User.objects.filter(pk=user.pk).update(is_active=False)

    assert_problem(client.get("/api/users/me"), 401, "user_inactive")


def test_a_password_change_refuses_earlier_tokens_at_once(client_for: Clients) -> None:
    user = UserFactory()
    client = client_for(user)
    assert client.get("/api/users/me").status_code == 200

    user.set_password("a-brand-new-passphrase")
    user.save(update_fields=["password"])

    assert_problem(client.get("/api/users/me"), 401, "password_changed")
    assert client_for(user).get("/api/users/me").status_code == 200  # a new token works


def test_a_deleted_users_token_is_refused_at_once(client_for: Clients) -> None:
    user = UserFactory()
    client = client_for(user)
    assert client.get("/api/users/me").status_code == 200

    user.delete()

    assert_problem(client.get("/api/users/me"), 401, "user_not_found")


REMOVALS: dict[str, Any] = {
    "user.groups.remove": lambda user, group: user.groups.remove(group),
    "user.groups.clear": lambda user, group: user.groups.clear(),
    "group.user_set.remove": lambda user, group: group.user_set.remove(user),
    "group.user_set.clear": lambda user, group: group.user_set.clear(),
    "group renamed": None,
    "group deleted": lambda user, group: group.delete(),
}


@pytest.mark.parametrize("how", list(REMOVALS))
def test_a_role_removed_takes_effect_on_the_next_request(client_for: Clients, how: str) -> None:
    user = UserFactory(roles=[Role.CATALOG_MANAGER])
    client = client_for(user)
    group = Group.objects.get(name=Role.CATALOG_MANAGER)
    assert create_category(client, "hats").status_code == 201

    if how == "group renamed":
        group.name = "former-managers"
        group.save()
    else:
        REMOVALS[how](user, group)

    assert create_category(client, "caps").status_code == 403


def test_a_role_granted_takes_effect_on_the_next_request(client_for: Clients) -> None:
    user = UserFactory(roles=[Role.CUSTOMER])
    client = client_for(user)
    assert create_category(client, "hats").status_code == 403

    group, _ = Group.objects.get_or_create(name=Role.CATALOG_MANAGER)
    group.user_set.add(user)

    assert create_category(client, "hats").status_code == 201


def test_the_cached_user_has_no_password_hash_but_loads_it_when_asked() -> None:
    user = UserFactory(roles=[Role.SUPPORT])
    cached_user(user.pk)  # fill

    found = cached_user(user.pk)

    assert found is not None
    cached, _revoke = found
    assert "password" in cached.get_deferred_fields()
    assert (cached.pk, cached.email, cached.is_active) == (user.pk, user.email, True)
    assert cached.check_password(DEFAULT_PASSWORD) is True


def test_with_no_cache_time_every_request_reads_the_user(
    client_for: Clients, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.AUTH_USER_CACHE_SECONDS = 0
    product = make_product(sku="mug", stock=3)
    client = client_for(UserFactory())
    client.get(f"/api/products/{product.pk}")

    with django_assert_num_queries(2):  # the user, its groups
        assert client.get(f"/api/products/{product.pk}").status_code == 200
