"""Reads of user accounts and address books, scoped to what the reader may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.users.addresses import AddressNotFound
from apps.users.models import Address, User
from ecommerce.api.permissions import Role, has_role


def users_visible_to(user: Any) -> QuerySet[User]:
    """Support and admin see every account; anyone else sees only their own."""
    queryset = User.objects.prefetch_related("groups").order_by("pk")
    if has_role(user, Role.SUPPORT):
        return queryset
    return queryset.filter(pk=user.pk)


def active_user(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id, is_active=True).first()


def active_staff_with_roles(*, roles: tuple[str, ...]) -> QuerySet[User]:
    """Active staff accounts in any of the `roles` groups, and active superusers."""
    return (
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name__in=roles) | Q(is_superuser=True))
        .distinct()
        .order_by("pk")
    )


def addresses_of(*, user: Any) -> QuerySet[Address]:
    """A customer's address book, oldest entry first."""
    return Address.objects.filter(user_id=user.pk).order_by("pk")


def address_of(*, user: Any, address_id: int) -> Address:
    """One of `user`'s addresses. Raises AddressNotFound, for another customer's entry too."""
    address = addresses_of(user=user).filter(pk=address_id).first()
    if address is None:
        raise AddressNotFound(address_id=address_id)
    return address


def default_addresses(*, user: Any) -> tuple[Address | None, Address | None]:
    """A customer's default shipping and billing addresses (None where there is none)."""
    shipping = billing = None
    for address in addresses_of(user=user).filter(
        Q(is_default_shipping=True) | Q(is_default_billing=True)
    ):
        if address.is_default_shipping:
            shipping = address
        if address.is_default_billing:
            billing = address
    return shipping, billing
