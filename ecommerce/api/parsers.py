"""Request body parsing that accepts JSON whatever the Content-Type claims.

The spec's `curl -d '{...}'` sends JSON labelled `application/x-www-form-urlencoded`, and
some clients send no Content-Type at all; both are read as JSON. Bodies are capped at
`API_MAX_BODY_BYTES` (DRF streams the body itself, so Django's own cap does not apply).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_body(stream: IO[bytes]) -> bytes:
    """Read the whole body, refusing more than API_MAX_BODY_BYTES."""
    limit = settings.API_MAX_BODY_BYTES
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return body


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from exc


class JSONParser(parsers.BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return decode_json(read_body(stream))


class JSONOrFormParser(parsers.BaseParser):
    """Form bodies as forms, but a body that opens with `{` is a JSON object."""

    media_type = "application/x-www-form-urlencoded"

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = read_body(stream)
        if body.lstrip()[:1] == b"{":
            return decode_json(body)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        # Decode here: given bytes, QueryDict silently falls back to ISO-8859-1.
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError("The form body is not valid text.") from exc
        return QueryDict(text, encoding=encoding)


class ContentNegotiation(DefaultContentNegotiation):
    """A body without Content-Type is parsed as JSON instead of being refused with 415."""

    def select_parser(
        self, request: Request, parsers: Sequence[parsers.BaseParser]
    ) -> parsers.BaseParser | None:
        if not request.content_type:
            return next((p for p in parsers if isinstance(p, JSONParser)), None)
        return super().select_parser(request, parsers)
