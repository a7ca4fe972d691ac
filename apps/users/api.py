"""Users and authentication endpoints (thin: parse, call a service or selector, serialize)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.serializers import TokenBlacklistSerializer

from apps.users import selectors, services
from apps.users.models import User
from apps.users.serializers import (
    AccountOutputSerializer,
    ProfileUpdateInputSerializer,
    RegistrationInputSerializer,
    TokenRefreshInputSerializer,
    UserOutputSerializer,
)
from ecommerce.api.permissions import HasRole, Role


class UserViewSet(viewsets.GenericViewSet):
    """Registration, the caller's own account, and the user directory for staff."""

    lookup_value_regex = r"[0-9]+"
    search_fields = ("email", "name")
    ordering_fields = ("id", "date_joined", "email", "name")
    filterset_fields = ("is_active",)
    serializer_class = AccountOutputSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "create":
            return [AllowAny()]
        if self.action == "list":
            return [HasRole.of(Role.SUPPORT)()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[User]:
        return selectors.users_visible_to(self.request.user)

    def create(self, request: Request) -> Response:
        serializer = RegistrationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.register_user(**serializer.validated_data)
        return Response(
            UserOutputSerializer(user).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/users/{user.pk}"},
        )

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AccountOutputSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        # Scoped queryset: another customer's id is a 404, not a 403.
        return Response(AccountOutputSerializer(self.get_object()).data)

    @action(detail=False, methods=["get", "patch"], url_path="me")
    def me(self, request: Request) -> Response:
        user = request.user
        if request.method == "PATCH":
            serializer = ProfileUpdateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            user = services.update_profile(user=user, **serializer.validated_data)
        return Response(AccountOutputSerializer(user).data)


class TokenObtainView(jwt_views.TokenObtainPairView):
    """Exchange email and password for an access and a refresh token."""

    authentication_classes = ()


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""

    authentication_classes = ()
    serializer_class = TokenRefreshInputSerializer


# A token view rather than a plain APIView: without an authenticator DRF turns a refused
# token into a 403, while TokenViewBase names the Bearer scheme and so answers 401.
class LogoutView(jwt_views.TokenViewBase):
    """Blacklist a refresh token. Access tokens expire on their own (minutes)."""

    serializer_class = TokenBlacklistSerializer

    @extend_schema(responses={status.HTTP_204_NO_CONTENT: None})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)
