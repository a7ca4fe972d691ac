"""Test-only URLconf and middleware: database errors raised in a view or in a middleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

REFUSED = (
    'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


class OutageView(APIView):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise OperationalError(REFUSED)

    def post(self, request: Request) -> Response:
        raise InterfaceError("connection already closed")


class IntegrityView(APIView):
    authentication_classes: tuple[Any, ...] = ()
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise IntegrityError('duplicate key value violates unique constraint "sku"')


def outage_page(request: HttpRequest) -> HttpResponse:
    """A plain Django view outside /api/ (as the admin's are)."""
    raise OperationalError(REFUSED)


def fine(request: HttpRequest) -> HttpResponse:
    return HttpResponse("fine")


class DatabaseDownMiddleware:
    """Stands for a middleware that reads the database (sessions, authentication): the
    database is down when the path says so, before or after the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.endswith("/down-before"):
            raise OperationalError(REFUSED)
        response = self.get_response(request)
        if request.path.endswith("/down-after"):
            raise OperationalError("server closed the connection unexpectedly")
        return response


test_patterns = [
    path("outage", OutageView.as_view()),
    path("integrity", IntegrityView.as_view()),
    path("fine/down-before", fine),
    path("fine/down-after", fine),
]

urlpatterns = [
    path("api/test/", include(test_patterns)),
    path("outage-page", outage_page),
    path("admin-like/down-before", fine),
    path("", include("ecommerce.urls")),
]
