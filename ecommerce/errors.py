"""Typed domain errors: the base of every error a service raises on purpose.

Errors say what went wrong in domain terms and carry data; they know nothing of HTTP.
Each app subclasses one of the kinds below, and `ecommerce.api.exceptions` maps kinds to
status codes in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the caller can act on.

    `code` is a stable machine-readable name; `extra` holds the data a client needs to
    recover (for instance each short SKU with what is available).
    """

    code: ClassVar[str] = "domain_error"
    title: ClassVar[str] = "The request cannot be completed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """The request is well-formed but breaks a business rule about its content."""

    code = "invalid_input"
    title = "Invalid input"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    """The request clashes with the current state of a resource."""

    code = "conflict"
    title = "Conflict"


class Unprocessable(DomainError):
    """The request can never succeed as sent (for instance a reused idempotency key)."""

    code = "unprocessable"
    title = "Unprocessable request"


class Unavailable(DomainError):
    """A dependency needed to serve the request is down; the client may retry later."""

    code = "unavailable"
    title = "Service unavailable"
