"""A webhook receiver's signature check, as docs/webhooks.md tells receivers to write it."""

from __future__ import annotations

import hashlib
import hmac
import time


def verify_webhook(
    *, secret: str, timestamp: str, signature: str, body: bytes, tolerance_seconds: int = 300
) -> bool:
    """True when `signature` is ours over `timestamp.body` and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > tolerance_seconds:
        return False
    expected = hmac.new(secret.encode(), f"{sent_at}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(f"v1={expected.hexdigest()}", signature)
