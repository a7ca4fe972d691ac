"""Strict parsing of the identifiers and numbers a request carries: the one place that does it.

Python is generous where the database is not: `str.isdigit()` is true for `²` and `١٢`,
`int()` then refuses the first and reads the second; `int()` takes 2**64, which no
PostgreSQL column holds; `uuid.UUID()` takes braces and `urn:uuid:`; PostgreSQL refuses
NUL in any text. Every view, filter, serializer field and route that turns request text
into a number or a UUID goes through these functions, so one rule holds everywhere:
ASCII digits only, range-checked against the column the value feeds, and a refusal that
is a 400 (a malformed value in a body or query) or a 404 (a malformed address).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters import Filter
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound

# PostgreSQL column ranges (bigint backs every primary key: DEFAULT_AUTO_FIELD is BigAutoField).
BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)
INTEGER_MAX = 2**31 - 1
INTEGER_MIN = -(2**31)
ID_MAX = BIGINT_MAX

# Route patterns: what the URL resolver lets through to a view, which still parses it.
ID_PATTERN = r"[0-9]{1,19}"
UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
# OpenAPI schemas of the path parameters those patterns match.
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UUID = re.compile(UUID_PATTERN, re.ASCII)


class InvalidNumber(ValueError):
    """The value is not an integer written in ASCII digits, or is outside its range."""


def parse_int(
    value: Any, *, minimum: int | None = BIGINT_MIN, maximum: int | None = BIGINT_MAX
) -> int:
    """An integer from a JSON number or from ASCII digits (an optional sign), in range.

    A JSON float is taken only when it is integral (JSON Schema's `integer` allows 2.0).
    Raises InvalidNumber, whose message says which rule the value broke.
    """
    if isinstance(value, bool):
        raise InvalidNumber("A whole number is required.")
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if not integral and not (isinstance(value, str) and _INTEGER.fullmatch(value)):
        raise InvalidNumber("A whole number is required.")
    number = int(value)
    if minimum is not None and number < minimum:
        raise InvalidNumber(f"Ensure this value is greater than or equal to {minimum}.")
    if maximum is not None and number > maximum:
        raise InvalidNumber(f"Ensure this value is less than or equal to {maximum}.")
    return number


def parse_id(value: Any) -> int:
    """A primary key (1 .. bigint max). Raises InvalidNumber."""
    return parse_int(value, minimum=1, maximum=ID_MAX)


def is_id(value: Any) -> bool:
    """Whether `value` is a primary key written as ASCII digits or a JSON integer."""
    try:
        parse_id(value)
    except InvalidNumber:
        return False
    return True


def id_from_path(value: str) -> int:
    """The id in a URL. Raises NotFound: a malformed address names nothing."""
    try:
        return parse_id(value)
    except InvalidNumber:
        raise NotFound(f"No resource with id {value[:40]!r}.") from None


def parse_uuid(value: Any) -> uuid.UUID:
    """A UUID as 32 hex digits, hyphenated in the canonical places or not. Raises ValueError."""
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError("A UUID is required.")
    return uuid.UUID(value)


def uuid_from_path(value: str) -> uuid.UUID:
    """The UUID in a URL. Raises NotFound."""
    try:
        return parse_uuid(value)
    except ValueError:
        raise NotFound(f"No resource with id {value[:40]!r}.") from None


def has_nul(value: str) -> bool:
    """PostgreSQL refuses NUL in text, even in a WHERE clause: check before querying."""
    return "\x00" in value


# --- serializer fields ----------------------------------------------------------------------


class IntegerField(serializers.IntegerField):
    """DRF's IntegerField parsed strictly, bounded by the bigint column unless told otherwise.

    DRF's own field takes whatever `int()` takes (Unicode digits, `1_000`) and has no
    bound, so 2**63 reaches the database and fails there.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", BIGINT_MIN)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and len(data) > self.MAX_STRING_LENGTH:
            self.fail("max_string_length")
        try:
            # Unbounded here: the min/max validators word the range error (and the schema).
            return parse_int(data, minimum=None, maximum=None)
        except InvalidNumber:
            self.fail("invalid")
        raise AssertionError("unreachable")  # pragma: no cover  (fail() raises)


class IdField(IntegerField):
    """A primary key in a body: a JSON integer or ASCII digits, 1 .. bigint max."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)


# --- query filters ------------------------------------------------------------------------


class IntegerFormField(forms.Field):
    """A form field (for django-filter) with `parse_int`'s rules and bounds."""

    def __init__(
        self, *, min_value: int = BIGINT_MIN, max_value: int = BIGINT_MAX, **kwargs: Any
    ) -> None:
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        try:
            return parse_int(value, minimum=self.min_value, maximum=self.max_value)
        except InvalidNumber as exc:
            raise DjangoValidationError(str(exc), code="invalid") from None


@extend_schema_field(ID_SCHEMA)
class IdFilter(Filter):
    """Filter by a primary key given as ASCII digits (1 .. bigint max); else a 400."""

    field_class = IntegerFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)
