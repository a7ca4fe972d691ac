"""Input and output shapes of the users API (input serializers never touch a model)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.users.models import User
from ecommerce.api import fields
from ecommerce.api.permissions import roles_of


def password_min_length() -> int:
    """The shortest password Django's configured validators accept (1 if none says)."""
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return int(validator.get("OPTIONS", {}).get("min_length", 8))
    return 1


# The pattern: Django's NumericPasswordValidator refuses digits only, and DRF refuses NUL.
@extend_schema_field(
    {
        "type": "string",
        "minLength": password_min_length(),
        "maxLength": 128,
        "pattern": r"^[^\u0000]*[^\d\u0000][^\u0000]*$",
    }
)
class PasswordField(fields.CharField):
    """A new password: sent as is (never trimmed), never blank, never echoed back.

    Its length bounds are in the schema; the rest of Django's password validators (common,
    numeric-only, too like the email) run in the service.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", password_min_length())
        super().__init__(
            write_only=True, trim_whitespace=False, allow_blank=False, max_length=128, **kwargs
        )


class RegistrationInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=150, trim_whitespace=True)
    email = fields.EmailField(max_length=254)
    # Optional, but never blank: `password=` in a form is not "no password".
    password = PasswordField(
        required=False,
        help_text="Without one, the account cannot log in until a password is set.",
    )


class ProfileUpdateInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=150, trim_whitespace=True, required=False)


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
    token = fields.CharField(max_length=200, trim_whitespace=True)
    password = PasswordField()
