"""Roles and reusable DRF permission classes.

Roles are Django groups (created by the users app's data migration). `admin` may do
everything; a superuser counts as admin.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class Role(StrEnum):
    CUSTOMER = "customer"
    SUPPORT = "support"
    CATALOG_MANAGER = "catalog_manager"
    ADMIN = "admin"


def roles_of(user: Any) -> frozenset[str]:
    """The role names of a user, read once per user object."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached: frozenset[str] | None = getattr(user, "_roles_cache", None)
    if cached is None:
        names = {group.name for group in user.groups.all()}
        if user.is_superuser:
            names.add(Role.ADMIN)
        cached = frozenset(names)
        user._roles_cache = cached
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    """True when the user holds any of `roles`, or is an admin."""
    held = roles_of(user)
    return Role.ADMIN in held or any(role in held for role in roles)


class HasRole(BasePermission):
    """Allow authenticated users holding one of `roles` (admins always pass).

    Use `HasRole.of(Role.SUPPORT)` to get a class for `permission_classes`.
    """

    roles: tuple[Role, ...] = ()

    @classmethod
    def of(cls, *roles: Role) -> type[HasRole]:
        name = "HasRole_" + "_".join(role.value for role in roles)
        return type(name, (cls,), {"roles": roles})

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, *self.roles)


class IsOwnerOrHasRole(BasePermission):
    """Object-level: the object belongs to the user, or the user holds one of `roles`.

    Ownership is `obj == user` for user objects, else `obj.<owner_field>_id == user.pk`.
    Views should also scope their queryset, so that strangers get 404 rather than 403.
    """

    roles: tuple[Role, ...] = ()
    owner_field = "user"

    @classmethod
    def of(cls, *roles: Role, owner_field: str = "user") -> type[IsOwnerOrHasRole]:
        name = "IsOwnerOr_" + "_".join(role.value for role in roles)
        return type(name, (cls,), {"roles": roles, "owner_field": owner_field})

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        user = request.user
        owner_id = (
            obj.pk
            if obj.__class__ is user.__class__
            else getattr(obj, f"{self.owner_field}_id", None)
        )
        return owner_id == user.pk or has_role(user, *self.roles)
