"""Request body parsing that accepts JSON whatever the Content-Type claims.

The spec's `curl -d '{...}'` sends JSON labelled `application/x-www-form-urlencoded`, and
some clients send no Content-Type at all; both are read as JSON. Bodies are capped at
`API_MAX_BODY_BYTES` (DRF streams the body itself, so Django's own cap does not apply),
and JSON at `JSON_MAX_DEPTH` levels of nesting (deeper, the decoder or any code walking
the value recursively would exhaust the stack: a 500 for one small body).

A form body becomes a plain dict, not a QueryDict: DRF reads a QueryDict with HTML-form
rules, under which an empty optional field (`password=`) is absent rather than empty.
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


# Levels of arrays and objects a JSON body may nest; ours need 3 (order, items, item).
JSON_MAX_DEPTH = 32


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_body(stream: IO[bytes]) -> bytes:
    """Read the whole body, refusing more than API_MAX_BODY_BYTES."""
    limit = settings.API_MAX_BODY_BYTES
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return body


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_json(body: bytes) -> Any:
    too_deep = f"Malformed JSON: nested deeper than {JSON_MAX_DEPTH} levels."
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:  # deeper than the decoder's own stack: over the limit too
        raise ParseError(too_deep) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"Malformed JSON: {exc}") from exc
    if json_depth_exceeds(data, JSON_MAX_DEPTH):
        raise ParseError(too_deep)
    return data


class JSONParser(parsers.BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return decode_json(read_body(stream))


class FormData(dict[str, str | list[str]]):
    """A parsed form: a field sent once is its string, a field sent again is their list.

    Also the mark of any all-text input (a CSV row): typed fields read booleans from text
    there, while a JSON body must send `true` or `false`.
    """

    def lists(self) -> list[tuple[str, list[str]]]:
        return [(key, value if isinstance(value, list) else [value]) for key, value in self.items()]


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
        form = FormData()
        for key, values in QueryDict(text, encoding=encoding).lists():
            form[key] = values[0] if len(values) == 1 else values
        return form


class ContentNegotiation(DefaultContentNegotiation):
    """A body without Content-Type is parsed as JSON instead of being refused with 415."""

    def select_parser(
        self, request: Request, parsers: Sequence[parsers.BaseParser]
    ) -> parsers.BaseParser | None:
        if not request.content_type:
            return next((p for p in parsers if isinstance(p, JSONParser)), None)
        return super().select_parser(request, parsers)
