"""`manage.py ensure_database`: create the configured PostgreSQL database if it is missing.

`make run` calls it before migrating, so `cp .env.example .env && make run` works on a
server where the database was never created. SQLite creates its file by itself.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from django.conf import settings
from django.core.management.base import CommandError
from psycopg2 import sql

from ecommerce.commands import OperatorCommand


class Command(OperatorCommand):
    help = "Create the PostgreSQL database named in DATABASE_URL when it does not exist."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        if not db["ENGINE"].endswith("postgresql"):
            return
        try:
            conn = psycopg2.connect(
                dbname="postgres",
                user=db.get("USER") or None,
                password=db.get("PASSWORD") or None,
                host=db.get("HOST") or None,
                port=db.get("PORT") or None,
                connect_timeout=5,
            )
        except psycopg2.OperationalError as exc:
            raise CommandError(f"PostgreSQL is unreachable: {str(exc).strip()}") from None
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
                if cursor.fetchone():
                    return
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                self.stdout.write(f"created database {db['NAME']}")
        finally:
            conn.close()
