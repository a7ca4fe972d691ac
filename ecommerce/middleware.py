"""Middleware that only the admin and HTML pages need, skipped for the JSON API.

Sessions, CSRF, Django's authentication middleware, messages and X-Frame-Options serve the
admin (a session-authenticated HTML site). The API authenticates with JWT bearer tokens
inside DRF (REST_FRAMEWORK has no SessionAuthentication, so it never reads a session or
needs a CSRF token: DRF's views are csrf-exempt and only SessionAuthentication enforces
CSRF), renders JSON that no browser frames (every response carries a CSP with
`frame-ancestors 'none'` anyway), and reads `request.user` only after DRF set it. Run for
every API request, that stack cost about 20 us each per request for nothing.

`AdminOnlyMiddleware` stands in MIDDLEWARE where that stack stood and builds it from
ADMIN_ONLY_MIDDLEWARE around the rest of the chain; a request whose path starts with one
of SESSIONLESS_PATH_PREFIXES goes straight past it. Everything else (the admin, the API's
HTML docs pages, the sandbox pages) goes through the whole stack, `process_view` hooks
included (CSRF's check is one), in the order Django would have called them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

# What the admin needs (its system checks admin.E408-E410, silenced in settings, look for
# them in MIDDLEWARE only), in this order.
ADMIN_REQUIRED = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)

Handler = Callable[[HttpRequest], HttpResponseBase]
ViewHook = Callable[..., HttpResponseBase | None]
ExceptionHook = Callable[[HttpRequest, Exception], HttpResponseBase | None]


class AdminOnlyMiddleware:
    """ADMIN_ONLY_MIDDLEWARE for every request but those of SESSIONLESS_PATH_PREFIXES."""

    def __init__(self, get_response: Handler) -> None:
        stack = list(settings.ADMIN_ONLY_MIDDLEWARE)
        if [path for path in stack if path in ADMIN_REQUIRED] != list(ADMIN_REQUIRED):
            raise ImproperlyConfigured(
                f"ADMIN_ONLY_MIDDLEWARE must hold {', '.join(ADMIN_REQUIRED)}, in that order."
            )
        self.get_response = get_response
        self._prefixes: tuple[str, ...] = tuple(settings.SESSIONLESS_PATH_PREFIXES)
        self._exceptions: tuple[str, ...] = tuple(settings.SESSIONLESS_PATH_EXCEPTIONS)
        handler: Handler = get_response
        view_hooks: list[ViewHook] = []
        exception_hooks: list[ExceptionHook] = []
        # Built inside out, as django.core.handlers.base.BaseHandler.load_middleware does.
        for path in reversed(stack):
            instance: Any = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                view_hooks.insert(0, instance.process_view)
            if hasattr(instance, "process_exception"):
                exception_hooks.append(instance.process_exception)
            handler = instance
        self._full = handler
        self._view_hooks = tuple(view_hooks)
        self._exception_hooks = tuple(exception_hooks)

    def _skipped(self, request: HttpRequest) -> bool:
        path = request.path_info
        return path.startswith(self._prefixes) and not path.startswith(self._exceptions)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self._skipped(request):
            return self.get_response(request)
        return self._full(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        if self._skipped(request):
            return None
        for hook in self._view_hooks:
            response = hook(request, view, args, kwargs)
            if response is not None:
                return response
        return None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if self._skipped(request):
            return None
        for hook in self._exception_hooks:
            response = hook(request, exception)
            if response is not None:
                return response
        return None
