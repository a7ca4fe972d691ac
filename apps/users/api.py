"""Users, address book and authentication endpoints (thin: parse, call a service or
selector, serialize)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, ErrorDetail, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenBlacklistSerializer

from apps.users import selectors, services
from apps.users.addresses import AddressBookFull, AddressNotFound
from apps.users.exceptions import (
    AlreadySignedIn,
    EmailAlreadyRegistered,
    SetPasswordTokenExpired,
    SetPasswordTokenInvalid,
)
from apps.users.filters import UserFilter
from apps.users.models import Address, User
from apps.users.serializers import (
    AccountOutputSerializer,
    AddressBookEntryInputSerializer,
    AddressBookEntryOutputSerializer,
    ProfileUpdateInputSerializer,
    RegistrationInputSerializer,
    SetPasswordInputSerializer,
    TokenObtainInputSerializer,
    TokenRefreshInputSerializer,
    UserOutputSerializer,
    cart_token_field,
)
from apps.users.signals import announce_sign_in
from ecommerce.api import identifiers, ratelimit
from ecommerce.api.filters import OrderingFilter, SearchFilter
from ecommerce.api.locations import location, location_parameter
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems

ACCOUNT_EXAMPLE = OpenApiExample(
    "An account",
    value={
        "id": 7,
        "name": "John Doe",
        "email": "john@example.com",
        "created_at": "2026-11-24T10:15:00.123456Z",
        "date_joined": "2026-11-24T10:15:00.123456Z",
        "is_active": True,
        "roles": ["customer"],
    },
    response_only=True,
)
TOKEN_PAIR = inline_serializer(
    "TokenPair",
    fields={
        "access": serializers.CharField(help_text="Bearer token for the API (minutes)."),
        "refresh": serializers.CharField(help_text="Exchanges for a new pair (once)."),
    },
)
TOKEN_PAIR_EXAMPLE = OpenApiExample(
    "A token pair",
    value={"access": "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo3fQ.c2ln", "refresh": "eyJhbGci...."},
    response_only=True,
)
REFRESH_INPUT = inline_serializer("RefreshTokenInput", fields={"refresh": serializers.CharField()})
REFRESH_EXAMPLE = OpenApiExample(
    "A refresh token", value={"refresh": "eyJhbGciOiJIUzI1NiJ9...."}, request_only=True
)
TOKEN_REFUSED = InvalidToken("Token is invalid")


class UserViewSet(viewsets.GenericViewSet):
    """Registration, the caller's own account, and the user directory for staff."""

    lookup_value_regex = identifiers.ID_PATTERN
    filter_backends = (DjangoFilterBackend, SearchFilter, OrderingFilter)
    search_fields = ("email", "name")
    ordering_fields = ("id", "date_joined", "email", "name")
    # `created_at` is the public name (`date_joined` stays accepted while deprecated).
    ordering_sources = {"created_at": "date_joined"}
    filterset_class = UserFilter
    serializer_class = AccountOutputSerializer
    rate_limit_scope = {"create": ratelimit.AUTH}

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "create":
            return [AllowAny()]
        if self.action == "list":
            return [HasRole.of(Role.SUPPORT)()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[User]:
        return selectors.users_visible_to(self.request.user)

    @extend_schema(
        summary="Register",
        description="Without a password the account cannot log in until one is set "
        "(a set-password link is emailed). Open to anonymous callers and to support staff "
        "registering a customer; a signed-in customer gets 403 `already_signed_in`.",
        request=RegistrationInputSerializer,
        responses={
            status.HTTP_201_CREATED: UserOutputSerializer,
            **problems(EmailAlreadyRegistered(email="john@example.com"), AlreadySignedIn()),
        },
        parameters=[location_parameter("The user.")],
        examples=[
            OpenApiExample(
                "Register",
                value={"name": "John Doe", "email": "john@example.com", "password": "s3cret-pass"},
                request_only=True,
            ),
            OpenApiExample(
                "Registered",
                value={
                    "id": 7,
                    "name": "John Doe",
                    "email": "john@example.com",
                    "created_at": "2026-11-24T10:15:00.123456Z",
                    "date_joined": "2026-11-24T10:15:00.123456Z",
                },
                response_only=True,
                status_codes=[201],
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = RegistrationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_user(**serializer.validated_data, registered_by=request.user)
        return Response(
            UserOutputSerializer(user).data,
            status=status.HTTP_201_CREATED,
            headers=location("users", user.pk),
        )

    @extend_schema(summary="List users (support, admin)", examples=[ACCOUNT_EXAMPLE])
    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AccountOutputSerializer(page, many=True).data)

    @extend_schema(summary="Read a user (self, support, admin)", examples=[ACCOUNT_EXAMPLE])
    def retrieve(self, request: Request, pk: str) -> Response:
        # Scoped queryset: another customer's id is a 404, not a 403.
        user = get_object_or_404(self.get_queryset(), pk=identifiers.id_from_path(pk))
        return Response(AccountOutputSerializer(user).data)

    @extend_schema(methods=["GET"], summary="Read one's own account", examples=[ACCOUNT_EXAMPLE])
    @extend_schema(
        methods=["PATCH"],
        summary="Change one's own name",
        request=ProfileUpdateInputSerializer,
        examples=[
            OpenApiExample("Rename", value={"name": "John Q. Doe"}, request_only=True),
            ACCOUNT_EXAMPLE,
        ],
    )
    @action(detail=False, methods=["get", "patch"], url_path="me")
    def me(self, request: Request) -> Response:
        user = request.user
        if request.method == "PATCH":
            serializer = ProfileUpdateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            user = services.update_profile(user=user, **serializer.validated_data)
        return Response(AccountOutputSerializer(user).data)


@extend_schema_view(
    post=extend_schema(
        summary="Log in",
        description="Repeated failures lock the account, or the address, out for a while "
        "(429 `login_locked`), even with the right password.",
        request=inline_serializer(
            "TokenObtainInput",
            fields={
                "email": serializers.EmailField(),
                "password": serializers.CharField(style={"input_type": "password"}),
                "cart_token": cart_token_field(),
            },
        ),
        responses={
            status.HTTP_200_OK: TOKEN_PAIR,
            **problems(
                AuthenticationFailed(
                    "No active account found with the given credentials", "no_active_account"
                ),
                ratelimit.LoginLocked(wait_seconds=900),
            ),
        },
        examples=[
            OpenApiExample(
                "Credentials",
                value={"email": "customer@example.com", "password": "demo-shop-2026"},
                request_only=True,
            ),
            OpenApiExample(
                "Credentials and the cart filled before logging in",
                value={
                    "email": "customer@example.com",
                    "password": "demo-shop-2026",
                    "cart_token": "pV3o0kq9Vd1mZ2yJ8bQe5Xn4Ws7Hc6Tg",
                },
                request_only=True,
            ),
            TOKEN_PAIR_EXAMPLE,
        ],
    )
)
class TokenObtainView(ratelimit.LoginLockoutMixin, jwt_views.TokenObtainPairView):
    """Exchange email and password for an access and a refresh token, then announce the
    sign-in (`customer_signed_in`) with the cart token sent, so the visitor's cart follows."""

    authentication_classes = ()
    rate_limit_scope = ratelimit.AUTH
    serializer_class = TokenObtainInputSerializer

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # SimpleJWT's post() builds the serializer itself; kept to know who logged in.
        self.login = super().get_serializer(*args, **kwargs)
        return self.login

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)
        announce_sign_in(sender=type(self), user=self.login.user, cart_token=self.login.cart_token)
        return response


@extend_schema_view(
    post=extend_schema(
        summary="Refresh the token pair",
        request=REFRESH_INPUT,
        responses={
            status.HTTP_200_OK: TOKEN_PAIR,
            **problems(
                TOKEN_REFUSED,
                AuthenticationFailed("The user's password has been changed.", "password_changed"),
            ),
        },
        examples=[REFRESH_EXAMPLE, TOKEN_PAIR_EXAMPLE],
    )
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""

    authentication_classes = ()
    serializer_class = TokenRefreshInputSerializer


# A token view rather than a plain APIView: without an authenticator DRF turns a refused
# token into a 403, while TokenViewBase names the Bearer scheme and so answers 401.
class LogoutView(jwt_views.TokenViewBase):
    """Blacklist a refresh token. Access tokens expire on their own (minutes)."""

    serializer_class = TokenBlacklistSerializer

    @extend_schema(
        summary="Log out",
        request=REFRESH_INPUT,
        responses={status.HTTP_204_NO_CONTENT: None, **problems(TOKEN_REFUSED)},
        examples=[REFRESH_EXAMPLE],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SetPasswordView(APIView):
    """Set a password with the one-time token from the welcome email (no login needed)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    rate_limit_scope = ratelimit.AUTH

    @extend_schema(
        summary="Set a password with an emailed token",
        request=SetPasswordInputSerializer,
        responses={
            status.HTTP_204_NO_CONTENT: None,
            **problems(SetPasswordTokenInvalid(), SetPasswordTokenExpired()),
        },
        examples=[
            OpenApiExample(
                "Token and password",
                value={"token": "Nw.cdm1q4-5f0e8b7c6d5a4f3e2d1c", "password": "s3cret-pass"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = SetPasswordInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.set_password_with_token(**serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


ADDRESS_INPUT_EXAMPLE = OpenApiExample(
    "An address",
    value={
        "first_name": "John",
        "last_name": "Doe",
        "street_address_1": "Friedrichstraße 123",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
        "phone": "+49 30 1234567",
        "is_default_shipping": True,
    },
    request_only=True,
)
ADDRESS_EXAMPLE = OpenApiExample(
    "An address book entry",
    value={
        "id": 12,
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "street_address_1": "Friedrichstraße 123",
        "street_address_2": "",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
        "country_area": "",
        "phone": "+49 30 1234567",
        "is_default_shipping": True,
        "is_default_billing": False,
        "created_at": "2026-11-27T10:15:00.123456Z",
        "updated_at": "2026-11-27T10:15:00.123456Z",
    },
    response_only=True,
)
ADDRESS_REFUSED = ValidationError(
    {
        "postal_code": [
            ErrorDetail("Not a valid postal code for DE (like 12345).", "invalid_postal_code")
        ],
        "country_area": [ErrorDetail("This field is required.", "required")],
    }
)
ADDRESS_NOT_FOUND = AddressNotFound(address_id=12)
DEFAULT_FLAGS = AddressBookEntryInputSerializer.DEFAULT_FLAGS


def _default_flags(data: dict[str, Any]) -> dict[str, bool | None]:
    """The default flags of an input, None where absent, taken out of `data`."""
    shipping, billing = (data.pop(flag, None) for flag in DEFAULT_FLAGS)
    return {"default_shipping": shipping, "default_billing": billing}


@extend_schema_view(
    list=extend_schema(summary="List one's addresses", examples=[ADDRESS_EXAMPLE]),
    retrieve=extend_schema(
        summary="Read one of one's addresses",
        responses={
            status.HTTP_200_OK: AddressBookEntryOutputSerializer,
            **problems(ADDRESS_NOT_FOUND),
        },
        examples=[ADDRESS_EXAMPLE],
    ),
    create=extend_schema(
        summary="Add an address to one's address book",
        description="The address is normalized (spacing, letter case, the country's postal "
        "code format) and checked against its country's rules. An address equal to one "
        "already in the book is not stored twice: the answer is that entry. "
        "`is_default_shipping` / `is_default_billing` make it the default in place of the "
        "previous one.",
        request=AddressBookEntryInputSerializer,
        responses={
            status.HTTP_201_CREATED: AddressBookEntryOutputSerializer,
            **problems(ADDRESS_REFUSED, AddressBookFull(limit=50)),
        },
        parameters=[location_parameter("The address.")],
        examples=[ADDRESS_INPUT_EXAMPLE, ADDRESS_EXAMPLE],
    ),
    update=extend_schema(
        summary="Replace one of one's addresses",
        description="Fields left out are emptied; default flags left out stay as they are "
        "(`false` clears one).",
        request=AddressBookEntryInputSerializer,
        responses={
            status.HTTP_200_OK: AddressBookEntryOutputSerializer,
            **problems(ADDRESS_REFUSED, ADDRESS_NOT_FOUND),
        },
        examples=[ADDRESS_INPUT_EXAMPLE, ADDRESS_EXAMPLE],
    ),
    partial_update=extend_schema(
        summary="Change one of one's addresses",
        description="The fields sent replace those stored; the result is checked as a "
        "whole address.",
        request=AddressBookEntryInputSerializer(partial=True),
        responses={
            status.HTTP_200_OK: AddressBookEntryOutputSerializer,
            **problems(ADDRESS_REFUSED, ADDRESS_NOT_FOUND),
        },
        examples=[
            OpenApiExample(
                "New postal code, and the default billing address",
                value={"postal_code": "10115", "is_default_billing": True},
                request_only=True,
            ),
            ADDRESS_EXAMPLE,
        ],
    ),
    destroy=extend_schema(
        summary="Delete one of one's addresses",
        description="Orders keep their own copy of the addresses they were placed with.",
        responses={status.HTTP_204_NO_CONTENT: None, **problems(ADDRESS_NOT_FOUND)},
    ),
)
class AddressViewSet(viewsets.GenericViewSet):
    """The caller's address book at /api/users/me/addresses; another customer's entry is
    a 404, as if it did not exist."""

    lookup_value_regex = identifiers.ID_PATTERN
    permission_classes = (IsAuthenticated,)
    filter_backends = (OrderingFilter,)  # a fixed order: `?ordering=` is a 400
    serializer_class = AddressBookEntryOutputSerializer
    queryset = Address.objects.none()  # for the schema only: reads go through selectors

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(
            self.filter_queryset(selectors.addresses_of(user=request.user))
        )
        return self.get_paginated_response(AddressBookEntryOutputSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        address = selectors.address_of(user=request.user, address_id=identifiers.id_from_path(pk))
        return Response(AddressBookEntryOutputSerializer(address).data)

    def create(self, request: Request) -> Response:
        serializer = AddressBookEntryInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        flags = _default_flags(data)
        address = services.save_address(
            user=request.user,
            data=data,
            default_shipping=bool(flags["default_shipping"]),
            default_billing=bool(flags["default_billing"]),
        )
        # 201 for an equal entry already in the book too: one answer whatever was there.
        return Response(
            AddressBookEntryOutputSerializer(address).data,
            status=status.HTTP_201_CREATED,
            headers=location("users", "me", "addresses", address.pk),
        )

    def update(self, request: Request, pk: str) -> Response:
        address_id = identifiers.id_from_path(pk)
        serializer = AddressBookEntryInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._update(address_id, dict(serializer.validated_data))

    def partial_update(self, request: Request, pk: str) -> Response:
        address = selectors.address_of(user=request.user, address_id=identifiers.id_from_path(pk))
        serializer = AddressBookEntryInputSerializer(address, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self._update(address.pk, dict(serializer.validated_data))

    def destroy(self, request: Request, pk: str) -> Response:
        services.delete_address(user=request.user, address_id=identifiers.id_from_path(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, address_id: int, data: dict[str, Any]) -> Response:
        flags = _default_flags(data)
        address = services.update_address(
            user=self.request.user, address_id=address_id, data=data, **flags
        )
        return Response(AddressBookEntryOutputSerializer(address).data)
