"""HTTP validators and caching headers for public reads served from cached bytes.

A cached read (ecommerce/caching.py `Stamped`) carries a strong ETag (the digest of its
bytes) and a Last-Modified (when those bytes were rendered). Any change to what the body
shows retires the cache entry on commit, and the next fill renders and stamps it anew, so
the ETag changes exactly when the body does. A conditional GET or HEAD is evaluated as
RFC 9110 section 13.2.2 says: If-None-Match when present (weak comparison, `*` matches),
otherwise If-Modified-Since; a match is 304 Not Modified with the validators and no body.

Last-Modified has one-second resolution: two renders of different bodies within the same
second carry the same date, and a client that only sends If-Modified-Since could be told
"not modified" for the second. Clients that got an ETag send If-None-Match, which wins.
"""

from __future__ import annotations

from typing import TypeAlias

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date, parse_etags, parse_http_date_safe
from rest_framework.request import Request

from ecommerce.caching import Stamped

RequestLike: TypeAlias = HttpRequest | Request  # DRF's Request proxies method and META

JSON = "application/json"


def _weak(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def is_not_modified(request: RequestLike, stamped: Stamped) -> bool:
    """Whether `request` is a GET/HEAD whose validators match `stamped` (answer 304)."""
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        return "*" in tags or any(_weak(tag) == stamped.etag for tag in tags)
    if_modified_since = request.META.get("HTTP_IF_MODIFIED_SINCE")
    if if_modified_since is None or stamped.last_modified is None:
        return False
    since = parse_http_date_safe(if_modified_since)
    return since is not None and stamped.last_modified <= since


def validator_headers(stamped: Stamped) -> dict[str, str]:
    """ETag, Last-Modified and Cache-Control of a public cached read.

    `public` lets shared caches keep it for PUBLIC_READ_MAX_AGE_SECONDS, then revalidate;
    `Vary: Authorization` because staff reading the same URL get another body.
    """
    headers = {
        "ETag": stamped.etag,
        "Cache-Control": f"public, max-age={settings.PUBLIC_READ_MAX_AGE_SECONDS}",
        "Vary": "Authorization",
    }
    if stamped.last_modified is not None:
        headers["Last-Modified"] = http_date(stamped.last_modified)
    return headers


def cached_json_response(request: RequestLike, entry: bytes) -> HttpResponse:
    """200 with the entry's body, or 304 without one, both with the validators."""
    stamped = Stamped.of(entry)
    headers = validator_headers(stamped)
    if is_not_modified(request, stamped):
        return HttpResponseNotModified(headers=headers)
    return HttpResponse(stamped.body, content_type=JSON, headers=headers)
