"""Middleware that only the admin and HTML pages need, skipped for the JSON API.

Sessions, CSRF, Django's authentication middleware, messages and X-Frame-Options serve the
admin (a session-authenticated HTML site). The API authenticates with JWT bearer tokens
inside DRF (REST_FRAMEWORK has no SessionAuthentication, so it never reads a session or
needs a CSRF token: DRF's views are csrf-exempt and only SessionAuthentication enforces
CSRF), renders JSON that no browser frames (every response carries a CSP with
`frame-ancestors 'none'` anyway), and reads `request.user` only after DRF set it. Run for
every API request, that stack cost about 20 us each per request for nothing.

Each class here is Django's own, standing where Django's stood in MIDDLEWARE (so the
admin's system checks, which look for those classes and their order, still hold), that
passes a request whose path starts with one of SESSIONLESS_PATH_PREFIXES (and none of
SESSIONLESS_PATH_EXCEPTIONS) straight on. Every other request (the admin, the API's HTML
docs pages, the sandbox pages) gets Django's behaviour unchanged, CSRF's `process_view`
check included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase, HttpResponseForbidden
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware


def is_sessionless(request: HttpRequest) -> bool:
    """Whether the admin-only middleware passes `request` by (the JWT API, probes, metrics)."""
    path = request.path_info
    return path.startswith(tuple(settings.SESSIONLESS_PATH_PREFIXES)) and not path.startswith(
        tuple(settings.SESSIONLESS_PATH_EXCEPTIONS)
    )


class _AdminOnly:
    """Mixin: run the wrapped Django middleware unless the request is sessionless."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_sessionless(request):
            passed: HttpResponseBase = self.get_response(request)  # type: ignore[attr-defined]
            return passed
        response: HttpResponseBase = super().__call__(request)  # type: ignore[misc]
        return response


class AdminSessionMiddleware(_AdminOnly, SessionMiddleware):
    pass


class AdminCsrfViewMiddleware(_AdminOnly, CsrfViewMiddleware):
    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., Any],
        callback_args: tuple[Any, ...],
        callback_kwargs: dict[str, Any],
    ) -> HttpResponseForbidden | None:
        if is_sessionless(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AdminAuthenticationMiddleware(_AdminOnly, AuthenticationMiddleware):
    pass


class AdminMessageMiddleware(_AdminOnly, MessageMiddleware):
    pass


class AdminXFrameOptionsMiddleware(_AdminOnly, XFrameOptionsMiddleware):
    pass
