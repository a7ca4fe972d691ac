"""Outbox topics published by the users app; payloads are `{"user_id": <pk>}`."""

from __future__ import annotations

USER_REGISTERED = "user.registered"
