"""A model's INSERT written once: what the ORM's raw save writes, without compiling it on
every call.

The ORM compiles an INSERT on every save and `bulk_create` (about 0.4 ms of CPU per
statement on the order path, more than the database spends running it). A write on a hot
path builds its instances as usual, gets the statement and its parameters from
`Insert.statement()`, and may send several such statements in one round trip. The values
are read as a raw save reads them (no `pre_save`: set timestamps yourself) and prepared
for the database as the ORM prepares them; a field left to its `db_default` is written as
DEFAULT. The counterpart of `ecommerce.db.joined` for reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    DecimalField,
    ForeignKey,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)
from django.db.models.expressions import DatabaseDefault

# Fields whose prepared value on PostgreSQL is the Python value itself (psycopg adapts
# it): their preparation is skipped. Every other field is prepared by the field.
_AS_IS = (BooleanField, CharField, DateTimeField, DecimalField, IntegerField, TextField, UUIDField)


class Insert:
    """The INSERT of one model: every concrete column, the primary key included only when
    `with_pk` (the caller numbered the rows, from the sequence)."""

    def __init__(
        self, model: type[Model], *, with_pk: bool = False, using: str = DEFAULT_DB_ALIAS
    ) -> None:
        self.model = model
        self.using = using
        connection = connections[using]
        fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        quote = connection.ops.quote_name
        self._head = (
            f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(f.column) for f in fields)}) VALUES "
        )
        self._values: list[tuple[str, Callable[[Any], Any] | None]] = [
            (f.attname, self._preparer(f, connection)) for f in fields
        ]

    @staticmethod
    def _preparer(field: Any, connection: Any) -> Callable[[Any], Any] | None:
        target = field.target_field if isinstance(field, ForeignKey) else field
        if connection.vendor == "postgresql" and isinstance(target, _AS_IS):
            return None
        return lambda value: field.get_db_prep_save(value, connection)

    def statement(self, objs: Sequence[Model]) -> tuple[str, list[Any]]:
        """(sql, params) inserting `objs` in one statement, in their order."""
        if not objs:
            raise ValueError("an INSERT needs at least one row")
        rows: list[str] = []
        params: list[Any] = []
        for obj in objs:
            slots = []
            for attname, prepare in self._values:
                value = getattr(obj, attname)
                if isinstance(value, DatabaseDefault):
                    slots.append("DEFAULT")
                    continue
                slots.append("%s")
                params.append(value if prepare is None else prepare(value))
            rows.append(f"({', '.join(slots)})")
        return self._head + ", ".join(rows), params
