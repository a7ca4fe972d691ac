"""Test-only URLconf: the real routes plus views that raise each kind of error on purpose."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.urls import include, path
from rest_framework import serializers
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ecommerce import errors
from ecommerce.api.parsers import FormData
from ecommerce.api.permissions import HasRole, Role
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)
stdlib_logger = logging.getLogger("tests.ecommerce.stdlib")


class EmailTaken(errors.Conflict):
    code = "email_taken"
    title = "Email already registered"


class PlainDomainError(errors.DomainError):
    """A DomainError that subclasses none of the kinds: the handler falls back to 400."""

    code = "plain_refusal"
    title = "Plain refusal"


DOMAIN_ERRORS: dict[str, errors.DomainError] = {
    "invalid-input": errors.InvalidInput("Quantity must be a multiple of 6.", multiple=6),
    "forbidden": errors.Forbidden("Only the owner may do this.", owner_id=7),
    "not-found": errors.NotFound("No order 42.", order_id=42),
    "conflict": errors.Conflict("The cart changed meanwhile.", current_version=3),
    "email-taken": EmailTaken("a@example.com is taken.", email="a@example.com"),
    "unprocessable": errors.Unprocessable(
        "Idempotency key reused with another body.", idempotency_key="k-1"
    ),
    "unavailable": errors.Unavailable("The payment provider is down.", provider="acme"),
    "plain": PlainDomainError(),
    # Extra members never overwrite the standard ones.
    "hijack": errors.Conflict("Real detail.", status=200, title="Hijacked", type="x", sku="A-1"),
}


class OpenView(APIView):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes = (AllowAny,)


class EchoView(OpenView):
    """POST echoes what the parsers made of the body."""

    def post(self, request: Request) -> Response:
        data = request.data
        if isinstance(data, QueryDict | FormData):
            return Response({"kind": "form", "data": dict(data.lists())})
        return Response({"kind": "json", "data": data})


class ItemInputSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)


class OrderInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    items = ItemInputSerializer(many=True)
    attributes = serializers.DictField(child=serializers.IntegerField(), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["name"] == "forbidden":
            raise serializers.ValidationError("This name and email cannot go together.")
        return attrs


class ValidateView(OpenView):
    def post(self, request: Request) -> Response:
        serializer = OrderInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class DjangoValidationView(OpenView):
    def get(self, request: Request) -> Response:
        raise DjangoValidationError({"email": ["Use your work address."]})


class DomainErrorView(OpenView):
    def get(self, request: Request, kind: str) -> Response:
        raise DOMAIN_ERRORS[kind]


class Http404View(OpenView):
    def get(self, request: Request) -> Response:
        raise Http404("internal lookup detail")


class DjangoPermissionDeniedView(OpenView):
    def get(self, request: Request) -> Response:
        raise DjangoPermissionDenied("internal reason")


class GetOnlyView(OpenView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ThrottledView(OpenView):
    def get(self, request: Request) -> Response:
        raise Throttled(wait=7)


class BoomView(OpenView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("database password is hunter2")


class LoggingView(OpenView):
    def get(self, request: Request) -> Response:
        logger.info("test_view_reached", marker="structlog")
        stdlib_logger.warning("plain stdlib line")
        return Response({"ok": True})


class SupportOnlyView(APIView):
    """Default JWT authentication; only support (or admin) passes."""

    permission_classes = (HasRole.of(Role.SUPPORT),)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def boom_page(request: HttpRequest) -> HttpResponse:
    """A plain Django view outside /api/: its errors keep Django's own response."""
    raise RuntimeError("page failure")


test_patterns = [
    path("echo", EchoView.as_view()),
    path("validate", ValidateView.as_view()),
    path("django-validation", DjangoValidationView.as_view()),
    path("domain/<str:kind>", DomainErrorView.as_view()),
    path("http404", Http404View.as_view()),
    path("django-permission-denied", DjangoPermissionDeniedView.as_view()),
    path("get-only", GetOnlyView.as_view()),
    path("throttled", ThrottledView.as_view()),
    path("boom", BoomView.as_view()),
    path("logging", LoggingView.as_view()),
    path("support-only", SupportOnlyView.as_view()),
]

urlpatterns = [
    path("api/test/", include(test_patterns)),
    path("boom-page", boom_page),
    path("", include("ecommerce.urls")),
]
