"""Users and authentication endpoints (thin: parse, call a service or selector, serialize)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenBlacklistSerializer

from apps.users import selectors, services
from apps.users.exceptions import (
    EmailAlreadyRegistered,
    SetPasswordTokenExpired,
    SetPasswordTokenInvalid,
)
from apps.users.filters import UserFilter
from apps.users.models import User
from apps.users.serializers import (
    AccountOutputSerializer,
    ProfileUpdateInputSerializer,
    RegistrationInputSerializer,
    SetPasswordInputSerializer,
    TokenRefreshInputSerializer,
    UserOutputSerializer,
)
from ecommerce.api import identifiers, ratelimit
from ecommerce.api.filters import OrderingFilter, SearchFilter
from ecommerce.api.permissions import HasRole, Role
from ecommerce.api.schema import problems

ACCOUNT_EXAMPLE = OpenApiExample(
    "An account",
    value={
        "id": 7,
        "name": "John Doe",
        "email": "john@example.com",
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
        "(a set-password link is emailed).",
        request=RegistrationInputSerializer,
        responses={
            status.HTTP_201_CREATED: UserOutputSerializer,
            **problems(EmailAlreadyRegistered(email="john@example.com")),
        },
        parameters=[
            OpenApiParameter(
                "Location", str, OpenApiParameter.HEADER, response=[201], description="The user."
            )
        ],
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
        user = services.register_user(**serializer.validated_data)
        return Response(
            UserOutputSerializer(user).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/users/{user.pk}"},
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
            TOKEN_PAIR_EXAMPLE,
        ],
    )
)
class TokenObtainView(ratelimit.LoginLockoutMixin, jwt_views.TokenObtainPairView):
    """Exchange email and password for an access and a refresh token."""

    authentication_classes = ()
    rate_limit_scope = ratelimit.AUTH


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
