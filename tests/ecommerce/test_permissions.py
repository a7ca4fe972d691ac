"""Role checks and object-level "owner or role", on real users with real groups."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from ecommerce.api.permissions import HasRole, IsOwnerOrHasRole, Role, roles_of
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

VIEW = APIView()


def request_by(user: Any) -> Request:
    request = Request(APIRequestFactory().get("/api/anything"))
    request.user = user
    return request


@pytest.mark.parametrize(
    ("roles", "superuser", "allowed"),
    [
        ([Role.CUSTOMER], False, False),
        ([Role.CATALOG_MANAGER], False, False),
        ([Role.SUPPORT], False, True),
        ([Role.CUSTOMER, Role.SUPPORT], False, True),
        ([Role.ADMIN], False, True),
        ([Role.CUSTOMER], True, True),  # a superuser counts as admin
    ],
)
def test_has_role_allows_holders_and_admins(
    roles: list[Role], superuser: bool, allowed: bool
) -> None:
    user = UserFactory(roles=roles, is_superuser=superuser)

    assert HasRole.of(Role.SUPPORT)().has_permission(request_by(user), VIEW) is allowed


def test_has_role_refuses_anonymous() -> None:
    assert HasRole.of(Role.SUPPORT)().has_permission(request_by(AnonymousUser()), VIEW) is False


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.SUPPORT, True),
        (Role.CATALOG_MANAGER, True),
        (Role.CUSTOMER, False),
    ],
)
def test_has_role_of_several_roles_allows_any_of_them(role: Role, allowed: bool) -> None:
    permission = HasRole.of(Role.SUPPORT, Role.CATALOG_MANAGER)()
    user = UserFactory(roles=[role])

    assert permission.has_permission(request_by(user), VIEW) is allowed


def test_has_role_of_no_role_allows_only_admins() -> None:
    permission = HasRole.of()()

    assert permission.has_permission(request_by(UserFactory(roles=[Role.ADMIN])), VIEW) is True
    assert permission.has_permission(request_by(UserFactory(roles=[Role.SUPPORT])), VIEW) is False


def test_has_role_of_builds_a_named_subclass() -> None:
    permission_class = HasRole.of(Role.SUPPORT, Role.CATALOG_MANAGER)

    assert issubclass(permission_class, HasRole)
    assert permission_class.__name__ == "HasRole_support_catalog_manager"
    assert permission_class.roles == (Role.SUPPORT, Role.CATALOG_MANAGER)
    assert HasRole.roles == ()


def test_roles_are_read_once_per_user_object(
    django_assert_num_queries: Any,
) -> None:
    user = UserFactory(roles=[Role.CUSTOMER, Role.SUPPORT])

    with django_assert_num_queries(1):
        assert roles_of(user) == frozenset({"customer", "support"})
        assert roles_of(user) == frozenset({"customer", "support"})


def test_roles_of_anonymous_is_empty_without_a_query(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert roles_of(AnonymousUser()) == frozenset()


def test_owner_or_role_needs_an_authenticated_user() -> None:
    permission = IsOwnerOrHasRole.of(Role.SUPPORT)()

    assert permission.has_permission(request_by(AnonymousUser()), VIEW) is False
    assert permission.has_permission(request_by(UserFactory()), VIEW) is True


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [([Role.CUSTOMER], False), ([Role.SUPPORT], True), ([Role.ADMIN], True)],
)
def test_owner_or_role_on_another_user_needs_the_role(roles: list[Role], allowed: bool) -> None:
    permission = IsOwnerOrHasRole.of(Role.SUPPORT)()
    caller = UserFactory(roles=roles)
    other = UserFactory()

    assert permission.has_object_permission(request_by(caller), VIEW, other) is allowed


def test_owner_or_role_lets_a_user_reach_their_own_account() -> None:
    permission = IsOwnerOrHasRole.of(Role.SUPPORT)()
    customer = UserFactory(roles=[Role.CUSTOMER])

    assert permission.has_object_permission(request_by(customer), VIEW, customer) is True


def test_owner_or_role_reads_the_owner_field_of_other_objects() -> None:
    permission = IsOwnerOrHasRole.of(Role.SUPPORT)()
    customer = UserFactory(roles=[Role.CUSTOMER])
    other = UserFactory(roles=[Role.CUSTOMER])
    request = request_by(customer)

    assert permission.has_object_permission(request, VIEW, SimpleNamespace(user_id=customer.pk))
    assert not permission.has_object_permission(request, VIEW, SimpleNamespace(user_id=other.pk))
    assert not permission.has_object_permission(
        request, VIEW, SimpleNamespace(owner_id=customer.pk)
    )


def test_owner_or_role_with_a_custom_owner_field() -> None:
    permission_class = IsOwnerOrHasRole.of(Role.SUPPORT, owner_field="buyer")
    customer = UserFactory(roles=[Role.CUSTOMER])
    request = request_by(customer)

    assert permission_class.__name__ == "IsOwnerOr_support"
    assert permission_class().has_object_permission(
        request, VIEW, SimpleNamespace(buyer_id=customer.pk)
    )
    assert not permission_class().has_object_permission(
        request, VIEW, SimpleNamespace(user_id=customer.pk)
    )


def test_role_added_later_counts_from_the_next_load_of_the_user() -> None:
    user = UserFactory(roles=[Role.CUSTOMER])
    assert roles_of(user) == frozenset({"customer"})
    support, _ = Group.objects.get_or_create(name=Role.SUPPORT)

    user.groups.add(support)

    assert roles_of(user) == frozenset({"customer"})  # read once per user object
    fresh = type(user).objects.get(pk=user.pk)
    assert HasRole.of(Role.SUPPORT)().has_permission(request_by(fresh), VIEW) is True
