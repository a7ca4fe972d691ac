"""Middleware that only the admin and HTML pages need, skipped for the JSON API.

Sessions, Django's authentication middleware and messages serve the admin (a
session-authenticated HTML site). The API authenticates with JWT bearer tokens inside DRF
(REST_FRAMEWORK has no SessionAuthentication, so it never reads a session) and reads
`request.user` only after DRF set it. Run for every API request, that stack cost about
20 us each per request for nothing. CSRF and X-Frame-Options stay Django's own, on every
path: a cookie lookup and a header, DRF's views are csrf-exempt, and `check --deploy`
looks for them by name.

Each class here is Django's own, standing where Django's stood in MIDDLEWARE (so the
admin's system checks, which look for those classes and their order, still hold), that
passes a request whose path starts with one of SESSIONLESS_PATH_PREFIXES (and none of
SESSIONLESS_PATH_EXCEPTIONS) straight on. Every other request (the admin, the API's HTML
docs pages, the sandbox pages) gets Django's behaviour unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase


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


class AdminAuthenticationMiddleware(_AdminOnly, AuthenticationMiddleware):
    pass


class AdminMessageMiddleware(_AdminOnly, MessageMiddleware):
    pass
