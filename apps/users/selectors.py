"""Reads of user accounts, scoped to what the reader may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.users.models import User
from ecommerce.api.permissions import Role, has_role


def users_visible_to(user: Any) -> QuerySet[User]:
    """Support and admin see every account; anyone else sees only their own."""
    queryset = User.objects.prefetch_related("groups").order_by("pk")
    if has_role(user, Role.SUPPORT):
        return queryset
    return queryset.filter(pk=user.pk)


def active_user(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id, is_active=True).first()
