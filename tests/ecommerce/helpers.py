"""Assertions and builders shared by the gateway tests."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse

from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE
from ecommerce.observability.logging import build_logging_config

ERROR_URLS = "tests.ecommerce.error_urls"
HEX_ID = r"[0-9a-f]{32}"

LogLines = Callable[[], list[dict[str, Any]]]


def problem(response: HttpResponse, status: int) -> dict[str, Any]:
    """Assert the response is an RFC 9457 problem with `status`; return its body."""
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status
    assert body["request_id"] == response["X-Request-ID"]
    return body


def redis_cache_at(port: int, *, timeout_seconds: float) -> dict[str, Any]:
    """A CACHES setting pointing django-redis at 127.0.0.1:`port`."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": "test-unreachable",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": timeout_seconds,
                "SOCKET_TIMEOUT": timeout_seconds,
            },
        }
    }


def project_log_handler(*, json_lines: bool) -> tuple[logging.Handler, io.StringIO]:
    """A handler formatting exactly as the configured one does, writing to a buffer."""
    config = build_logging_config(json_lines=json_lines, level="INFO")
    spec = dict(config["formatters"]["structlog"])
    formatter_class = spec.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_class(**spec))
    return handler, stream
