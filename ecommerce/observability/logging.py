"""structlog set up once for every process: web, worker, beat and management commands.

Standard-library loggers (Django, gunicorn, Celery) are rendered by the same processor chain,
so every line is one JSON object in production and a coloured line in development.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

# Keys whose values never reach a log line, whatever logs them.
# A key is secret when it is one of these words or contains one of the fragments.
SECRET_KEYS = frozenset({"access", "refresh", "cookie", "signature"})
SECRET_FRAGMENTS = ("password", "token", "secret", "authorization", "api_key", "apikey")
REDACTED = "[redacted]"


def is_secret_key(key: object) -> bool:
    name = str(key).lower()
    return name in SECRET_KEYS or any(fragment in name for fragment in SECRET_FRAGMENTS)


def _redacted(value: Any, depth: int) -> Any:
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_secret_key(k) else _redacted(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(item, depth + 1) for item in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any secret-looking key, at any depth of mappings and lists."""
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = _redacted(value, 1)
    return event_dict


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Carry the active span's trace and span ids, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def build_logging_config(
    *, json_lines: bool, level: str, access_log: bool = True
) -> dict[str, Any]:
    """Return a `logging.config.dictConfig` dict routing stdlib loggers through structlog.

    `access_log` False silences gunicorn's access logger (its level is above CRITICAL).
    """
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=True)
    )
    final_processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_lines:
        final_processors.append(structlog.processors.format_exc_info)
    final_processors.append(renderer)
    handler = {"class": "logging.StreamHandler", "formatter": "structlog"}
    quiet = {"handlers": ["default"], "level": "ERROR", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final_processors,
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "django": {"handlers": ["default"], "level": level, "propagate": False},
            # Django logs every 4xx as a warning; the problem+json response says it already.
            "django.request": quiet,
            "django.server": quiet,
            "django.db.backends": quiet,
            "gunicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "gunicorn.access": {
                "handlers": ["default"],
                "level": "INFO" if access_log else logging.CRITICAL + 1,
                "propagate": False,
            },
            "celery": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


def configure_structlog() -> None:
    """Configure structlog's own loggers to hand their events to the stdlib formatter."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


__all__ = ["build_logging_config", "configure_structlog", "get_logger"]
