"""Input and output shapes of the users API (input serializers never touch a model)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.users.addresses import MAX_LENGTHS, AddressInvalid, address_data, validate_address
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


CART_TOKEN_MAX_LENGTH = 100


def cart_token_field() -> fields.CharField:
    return fields.CharField(
        max_length=CART_TOKEN_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text="The token of a cart filled before logging in: it is merged into the "
        "customer's cart.",
    )


class TokenObtainInputSerializer(TokenObtainPairSerializer):
    """SimpleJWT's login, plus the optional token of the cart the visitor filled."""

    cart_token = cart_token_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        self.cart_token: str = attrs.get("cart_token", "")
        return super().validate(attrs)


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


def created_at_field() -> serializers.DateTimeField:
    return serializers.DateTimeField(
        source="date_joined", read_only=True, help_text="When the account was created."
    )


def date_joined_field() -> serializers.DateTimeField:
    return serializers.DateTimeField(
        read_only=True,
        help_text="Deprecated: the same instant as `created_at` (every other resource names "
        "it so); removed in the next release.",
    )


# `date_joined` was the one creation time not named `created_at`: both are sent for one
# release, the old one marked deprecated in the schema.
@extend_schema_serializer(deprecate_fields=["date_joined"])
class UserOutputSerializer(serializers.ModelSerializer):
    created_at = created_at_field()
    date_joined = date_joined_field()

    class Meta:
        model = User
        fields = ("id", "name", "email", "created_at", "date_joined")
        read_only_fields = fields


@extend_schema_serializer(deprecate_fields=["date_joined"])
class AccountOutputSerializer(serializers.ModelSerializer):
    """The account as its owner and staff see it: with roles and status."""

    created_at = created_at_field()
    date_joined = date_joined_field()
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("id", "name", "email", "created_at", "date_joined", "is_active", "roles")
        read_only_fields = fields

    def get_roles(self, user: User) -> list[str]:
        return sorted(roles_of(user))


class SetPasswordInputSerializer(serializers.Serializer):
    token = fields.CharField(max_length=200, trim_whitespace=True)
    password = PasswordField()


def _address_text(field: str, *, required: bool = False, **kwargs: Any) -> fields.CharField:
    return fields.CharField(
        max_length=MAX_LENGTHS[field],
        required=required,
        allow_blank=not required,
        trim_whitespace=True,
        **kwargs,
    )


class AddressSerializer(serializers.Serializer):
    """One postal address, in and out (the address book, a cart, an order).

    Input passes `validate_address`: it comes out normalized (spacing, letter case, the
    canonical postal code), and a refusal names each field as a 400 `validation_error`,
    nested under the field that holds the address when this serializer is nested. With
    `partial=True` and an `instance`, the fields sent are checked merged into the
    instance's address, so a change is checked as the whole address it makes.
    """

    first_name = _address_text("first_name", required=True)
    last_name = _address_text("last_name", required=True)
    company = _address_text("company")
    street_address_1 = _address_text("street_address_1", required=True)
    street_address_2 = _address_text("street_address_2")
    city = _address_text("city", required=True)
    postal_code = _address_text(
        "postal_code",
        help_text="Required where the country uses postal codes; stored in the country's "
        "canonical form (`sw1a1aa` becomes `SW1A 1AA`).",
    )
    country = fields.RegexField(
        r"^[A-Za-z]{2}$",
        help_text="ISO 3166-1 alpha-2 code, stored in capitals.",
    )
    country_area = _address_text(
        "country_area",
        help_text="State, province or prefecture: required in US, CA, AU, BR, MX, JP, CN and "
        "IN; in US and CA stored as the postal abbreviation (`California` becomes `CA`).",
    )
    phone = _address_text("phone", help_text="Digits with +, spaces, dashes, dots, brackets.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = dict(attrs)
        if self.partial:
            if self.instance is None:
                return attrs
            data = {**address_data(self.instance), **attrs}
        try:
            return validate_address(data)
        except AddressInvalid as exc:
            raise serializers.ValidationError(
                {
                    field: [ErrorDetail(message, code=exc.codes.get(field, "invalid"))]
                    for field, message in exc.extra["errors"].items()
                }
            ) from None


class AddressBookEntryInputSerializer(AddressSerializer):
    """An address for the book, and whether it becomes a default (absent: unchanged)."""

    is_default_shipping = fields.BooleanField(required=False)
    is_default_billing = fields.BooleanField(required=False)

    DEFAULT_FLAGS = ("is_default_shipping", "is_default_billing")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        flags = {key: attrs.pop(key) for key in self.DEFAULT_FLAGS if key in attrs}
        return {**super().validate(attrs), **flags}


class AddressBookEntryOutputSerializer(AddressSerializer):
    id = serializers.IntegerField(read_only=True)
    is_default_shipping = serializers.BooleanField(read_only=True)
    is_default_billing = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
