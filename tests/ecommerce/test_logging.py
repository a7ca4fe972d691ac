"""Log lines: one JSON object each, and secrets never printed whatever logs them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.stdlib import ProcessorFormatter

from ecommerce.observability.logging import REDACTED, get_logger, redact_secrets
from tests.ecommerce.helpers import project_log_handler

SECRETS = ("hunter2-pw", "tok-123", "Bearer abc.def", "Bearer nested.jwt", "sk_live_42")


@pytest.fixture(autouse=True)
def _outside_any_request() -> None:
    # The request id middleware leaves the last request's id bound (gunicorn's access line,
    # written after the response, relies on it); these lines belong to no request.
    structlog.contextvars.clear_contextvars()


@pytest.fixture(params=[True, False], ids=["json", "console"])
def rendered(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """What the project's formatter writes for the `tests.redaction` logger."""
    handler, stream = project_log_handler(json_lines=request.param)
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def log_secrets() -> None:
    get_logger("tests.redaction").info(
        "login_attempt",
        email="ann@example.com",
        password="hunter2-pw",
        token="tok-123",
        authorization="Bearer abc.def",
        headers={"Authorization": "Bearer nested.jwt", "Accept": "application/json"},
        API_KEY="sk_live_42",
    )


def test_secret_values_never_reach_the_rendered_line(rendered: io.StringIO) -> None:
    log_secrets()

    text = rendered.getvalue()
    assert "login_attempt" in text
    assert "ann@example.com" in text
    assert REDACTED in text
    for secret in SECRETS:
        assert secret not in text


def test_json_line_keeps_the_keys_with_redacted_values() -> None:
    handler, stream = project_log_handler(json_lines=True)
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        log_secrets()
    finally:
        logger.removeHandler(handler)

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    line.pop("timestamp")
    assert line == {
        "event": "login_attempt",
        "email": "ann@example.com",
        "password": REDACTED,
        "token": REDACTED,
        "authorization": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "API_KEY": REDACTED,
        "level": "info",
        "logger": "tests.redaction",
    }


def test_redact_secrets_replaces_secret_keys_in_any_case_one_level_deep() -> None:
    event = {
        "event": "token_refreshed",
        "user_id": 7,
        "Refresh": "r-secret",
        "access": "a-secret",
        "payload": {"new_password": "p-secret", "name": "Ann"},
        "count": 3,
    }

    result = redact_secrets(None, "info", event)

    assert result == {
        "event": "token_refreshed",
        "user_id": 7,
        "Refresh": REDACTED,
        "access": REDACTED,
        "payload": {"new_password": REDACTED, "name": "Ann"},
        "count": 3,
    }


def test_configured_handler_writes_one_json_object_per_line() -> None:
    # The handler settings.LOGGING installed (pytest adds capture handlers of its own).
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h.formatter, ProcessorFormatter)
    ]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        get_logger("tests.configured").warning("disk_low", free_bytes=1024, password="pw-secret")
        logging.getLogger("tests.configured.stdlib").warning("plain %s line", "stdlib")
    finally:
        handler.setStream(previous)

    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    for line in lines:
        line.pop("timestamp")
    assert lines == [
        {
            "event": "disk_low",
            "free_bytes": 1024,
            "password": REDACTED,
            "level": "warning",
            "logger": "tests.configured",
        },
        {"event": "plain stdlib line", "level": "warning", "logger": "tests.configured.stdlib"},
    ]
