"""The end of a transactional test: delete the rows it left instead of truncating every table.

Django's flush truncates all of the project's tables (new files for every table and index),
runs post_migrate again (content types and permissions), and the suite then re-created
the role groups and tax classes: 3 to 9 s per transactional test on a busy 2-core machine.
Here, on PostgreSQL as a superuser (what the suite runs as):
- one query finds the tables that hold rows, one statement deletes them, with triggers and
  foreign-key checks off for that transaction (`session_replication_role = replica`): the
  append-only guards of the ledgers and the search-document triggers have nothing to
  protect in a database being emptied;
- content types and permissions (post_migrate's) are kept; the role groups and tax classes
  (the data migrations') are put back as `tests.roles` builds them after the first
  transactional test, and again only when a test changed them (a checksum says so).
Anywhere else (another vendor, a role that is not superuser, another database alias, a
test case with `available_apps` or `serialized_rollback`) Django's own flush runs,
followed by the same restore.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import TransactionTestCase

from tests.roles import restore_role_groups, restore_tax_classes

# Written by migrate's post_migrate, never by the code under test.
KEPT = frozenset({"django_migrations", "django_content_type", "auth_permission"})
# Written by data migrations; tests.roles re-creates them.
REFERENCE = ("auth_group_permissions", "auth_group", "pricing_taxclass")
CHECKSUM = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM auth_group),
  (SELECT string_agg(group_id || ':' || permission_id, ',' ORDER BY group_id, permission_id)
     FROM auth_group_permissions),
  (SELECT string_agg(t::text, ',' ORDER BY id) FROM pricing_taxclass t)))
"""

_django_teardown = TransactionTestCase._fixture_teardown
_state: dict[str, Any] = {
    "superuser": None,
    "tables": None,
    "reference_checksum": None,
    "restore_pending": False,
}


def _can_delete_fast(connection: Any) -> bool:
    if connection.vendor != "postgresql":
        return False
    if _state["superuser"] is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            _state["superuser"] = bool(cursor.fetchone()[0])
    return bool(_state["superuser"])


def _tables(connection: Any) -> list[str]:
    if _state["tables"] is None:
        names = connection.introspection.django_table_names(only_existing=True, include_views=False)
        _state["tables"] = sorted(set(names) - KEPT - set(REFERENCE))
    return list(_state["tables"])


def _delete(cursor: Any, connection: Any, tables: list[str]) -> None:
    # Table names from Django's introspection, quoted.
    quote = connection.ops.quote_name
    deletes = " ".join(f"DELETE FROM {quote(table)};" for table in tables)  # noqa: S608
    cursor.execute(f"SET LOCAL session_replication_role = replica; {deletes}")


def _restore_reference_rows(connection: Any) -> None:
    restore_role_groups()
    restore_tax_classes()
    with connection.cursor() as cursor:
        cursor.execute(CHECKSUM)
        _state["reference_checksum"] = cursor.fetchone()[0]


def empty_database(connection: Any) -> bool:
    """Delete every row a test wrote; put the reference rows back if it changed them.
    False when the schema is not the latest: Django's flush copes with that."""
    quote = connection.ops.quote_name
    tables = _tables(connection)
    if tables is None:
        return False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        probes = [f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(t)})" for t in tables]  # noqa: S608
        cursor.execute(" UNION ALL ".join(probes), tables)
        holding = [row[0] for row in cursor.fetchall()]
        cursor.execute(CHECKSUM)
        reference_changed = cursor.fetchone()[0] != _state["reference_checksum"]
        if reference_changed:
            holding += REFERENCE
        if holding:
            _delete(cursor, connection, holding)
        if reference_changed:
            _restore_reference_rows(connection)
    return True


def _fixture_teardown(self: TransactionTestCase) -> None:
    fast = self.available_apps is None and not self.serialized_rollback and not self.reset_sequences
    for db_name in self._databases_names(include_mirrors=False):
        connection = connections[db_name]
        if (
            fast
            and db_name == DEFAULT_DB_ALIAS
            and _can_delete_fast(connection)
            and empty_database(connection)
        ):
            continue
        _django_teardown_one(self, db_name)
        if db_name == DEFAULT_DB_ALIAS:
            _state["restore_pending"] = True


def restore_after_django_flush() -> None:
    """After Django's flush, once every fixture of the test is torn down (the schema is
    the latest again): the role groups and tax classes back (tests/conftest.py)."""
    if _state["restore_pending"]:
        _state["restore_pending"] = False
        with transaction.atomic():
            _restore_reference_rows(connections[DEFAULT_DB_ALIAS])


def _django_teardown_one(case: TransactionTestCase, db_name: str) -> None:
    """Django's flush of one database, as TransactionTestCase._fixture_teardown does it."""
    case._databases_names = lambda include_mirrors=True: [db_name]  # type: ignore[method-assign]
    try:
        _django_teardown(case)
    finally:
        del case._databases_names


def install() -> None:
    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]
