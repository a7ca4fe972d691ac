"""Input and output shapes of the users API (input serializers never touch a model)."""

from __future__ import annotations

from rest_framework import serializers

from apps.users.models import User
from ecommerce.api.permissions import roles_of


class RegistrationInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, trim_whitespace=True)
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        required=False, allow_blank=False, write_only=True, trim_whitespace=False, max_length=128
    )


class ProfileUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, trim_whitespace=True, required=False)


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "name", "email", "date_joined")
        read_only_fields = fields


class AccountOutputSerializer(serializers.ModelSerializer):
    """The account as its owner and staff see it: with roles and status."""

    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("id", "name", "email", "date_joined", "is_active", "roles")
        read_only_fields = fields

    def get_roles(self, user: User) -> list[str]:
        return sorted(roles_of(user))
