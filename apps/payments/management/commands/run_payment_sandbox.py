"""`manage.py run_payment_sandbox [--host H] [--port P] [--db PATH]`: serve the payment sandbox."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from django.core.management.base import CommandError, CommandParser

from apps.payments.sandbox import default_port, serve
from ecommerce.commands import OperatorCommand, tcp_port


class Command(OperatorCommand):
    help = (
        "Serve the payment provider sandbox (test tokens, idempotency keys, fault injection) "
        "until SIGTERM; the same server as `python -m apps.payments.sandbox`."
    )
    # The sandbox uses nothing of Django's, so a project check never keeps it from starting.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface (default 127.0.0.1).")
        parser.add_argument(
            "--port",
            type=tcp_port,
            default=None,
            help="Port (default: PAYMENT_SANDBOX_PORT, else PAYMENT_PROVIDER_URL's, else 8090).",
        )
        parser.add_argument(
            "--db", default=":memory:", help="SQLite file to keep data in (default: memory)."
        )

    def handle(self, *args: Any, host: str, port: int | None, db: str, **options: Any) -> None:
        # The settings module has read .env into the environment by now.
        port = port if port is not None else default_port(os.environ)
        self.stdout.write(f"Payment sandbox on http://{host}:{port} (db {db}); SIGTERM stops it.")
        try:
            serve(host, port, db)
        except (OSError, sqlite3.Error) as exc:  # port taken, unknown host, bad --db path
            raise CommandError(f"Cannot serve on {host}:{port} (db {db}): {exc}") from None
