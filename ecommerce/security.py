"""Content-Security-Policy headers: strict for the admin and for the API docs.

Django 5.2 has no CSP support of its own and django-csp would be a dependency for three
fixed policies, so a small middleware sets them by path:

- the admin: everything from this origin only; inline styles allowed (one admin template
  has a <style> block), inline scripts never;
- the API docs (Swagger UI, ReDoc): scripts, styles and images from this origin only (the
  pinned builds of drf-spectacular-sidecar, served as static files; no CDN, no web fonts),
  and exactly the inline scripts the page was served with, allowed by their SHA-256
  (Swagger UI's set-up script), never 'unsafe-inline' scripts. Inline styles are allowed:
  both pages and Swagger UI itself set them. ReDoc runs its search in a blob: worker;
- everything else (JSON, problem+json, metrics): nothing may load or frame it.
A response that already carries a policy keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase

HEADER = "Content-Security-Policy"

ADMIN_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# {scripts}: the hashes of the page's inline scripts.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

DOCS_PATHS = ("/api/docs", "/api/redoc")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def is_docs_path(path: str) -> bool:
    return any(path == docs or path.startswith(f"{docs}/") for docs in DOCS_PATHS)


def script_hashes(html: bytes) -> list[str]:
    """CSP source expressions allowing each inline <script> of `html`, by SHA-256."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def policy_for(path: str, response: HttpResponseBase) -> str:
    """The policy of a response to a request for `path`."""
    if path == "/admin" or path.startswith("/admin/"):
        return ADMIN_POLICY
    if is_docs_path(path):
        html = response.content if isinstance(response, HttpResponse) else b""
        scripts = "".join(f" {source}" for source in script_hashes(html))
        return DOCS_POLICY.format(scripts=scripts)
    return API_POLICY


class ContentSecurityPolicyMiddleware:
    """Set Content-Security-Policy on every response that has none."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy_for(request.path_info, response)
        return response
