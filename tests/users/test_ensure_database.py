"""`manage.py ensure_database` creates a missing PostgreSQL database, once."""

from __future__ import annotations

import uuid
from io import StringIO

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection


def database_exists(name: str) -> bool:
    db = connection.settings_dict
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None
    finally:
        conn.close()


def drop(name: str) -> None:
    db = connection.settings_dict
    conn = psycopg2.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"])
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_a_missing_database_is_created_once(settings):
    name = f"ensure_{uuid.uuid4().hex[:12]}"
    settings.DATABASES = {"default": {**settings.DATABASES["default"], "NAME": name}}
    first, second = StringIO(), StringIO()
    try:
        call_command("ensure_database", stdout=first)
        call_command("ensure_database", stdout=second)
        assert database_exists(name)
    finally:
        drop(name)
    assert first.getvalue() == f"created database {name}\n"
    assert second.getvalue() == ""
