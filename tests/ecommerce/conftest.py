"""Fixtures for the gateway tests: rendered log lines, dead and silent ports, health state."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest

from ecommerce import health
from tests.ecommerce.helpers import LogLines, project_log_handler


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """Every line logged during the test, rendered to JSON by the project's formatter."""
    handler, stream = project_log_handler(json_lines=True)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server completes the TCP handshake, then never reads or answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # the kernel accepts into the backlog; nobody ever reads
        yield server.getsockname()[1]


@pytest.fixture
def shutting_down() -> Iterator[None]:
    health.mark_shutting_down()
    try:
        yield
    finally:
        health._shutting_down.clear()
