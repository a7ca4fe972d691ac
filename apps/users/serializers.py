"""Input and output shapes of the users API (input serializers never touch a model)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

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


class TokenRefreshInputSerializer(TokenRefreshSerializer):
    """SimpleJWT's refresh, refusing (401) what it lets through.

    A refresh token of a deleted account (SimpleJWT 5.5.1 lets DoesNotExist escape: a
    500) and one issued before the password was last changed (it would still rotate).
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        token = self.token_class(attrs["refresh"])
        user = User.objects.filter(pk=token.payload.get(jwt_settings.USER_ID_CLAIM)).first()
        if (
            user is not None
            and jwt_settings.CHECK_REVOKE_TOKEN
            and token.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM)
            != get_md5_hash_password(user.password)
        ):
            raise exceptions.AuthenticationFailed(
                "The user's password has been changed.", "password_changed"
            )
        try:
            return super().validate(attrs)
        except User.DoesNotExist:
            raise exceptions.AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from None


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


class SetPasswordInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, trim_whitespace=True)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)
