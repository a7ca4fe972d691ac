"""The `Idempotency-Key` header and request fingerprints (the rule lives in the services)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces


def idempotency_key_from(request: Request) -> str | None:
    """The caller's key, or None. Raises ValidationError (400) for a malformed key."""
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is None:
        return None
    if not _SANE_KEY.fullmatch(key):
        raise ValidationError(
            {HEADER: "Use 1 to 255 printable ASCII characters without spaces (a UUID is ideal)."}
        )
    return key


def fingerprint(data: Any) -> str:
    """A stable digest of a parsed request body (key order and whitespace do not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
