"""User directory filters (staff): strict, so a typo is a 400 rather than everyone."""

from __future__ import annotations

from apps.users.models import User
from ecommerce.api.filters import FilterSet, StrictBooleanFilter


class UserFilter(FilterSet):
    is_active = StrictBooleanFilter(field_name="is_active")

    class Meta:
        model = User
        fields = ("is_active",)
