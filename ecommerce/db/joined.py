"""Model instances from a join written once: what `select_related` builds, without
compiling the query on every call.

The ORM spends about a millisecond of CPU compiling a three-table `select_related` (the
statement text never changes; only its parameters do). A read on the order path writes
the join out once, selects `Joined.columns()` of each model in turn, and rebuilds the
instances with `Joined.instance()`: the fields are converted as the ORM would convert
them, and each instance is linked to the related one it was joined with, so reading the
relation makes no query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

Converter = Callable[[Any, Any, Any], Any]


class Joined:
    """One model of the join, under the SQL alias it has there."""

    def __init__(self, model: type[Model], alias: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.model = model
        self.alias = alias
        self.using = using
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self.pk_index = next(i for i, f in enumerate(self.fields) if f.primary_key)

    @property
    def width(self) -> int:
        return len(self.fields)

    def columns(self) -> str:
        """The select list of every concrete field, in the model's field order."""
        quote = connections[self.using].ops.quote_name
        return ", ".join(f"{self.alias}.{quote(f.column)}" for f in self.fields)

    def instance(self, row: Sequence[Any], start: int) -> Model | None:
        """The instance whose columns begin at `row[start]`; None when its primary key is
        NULL (the missing side of a LEFT JOIN)."""
        values = list(row[start : start + self.width])
        if values[self.pk_index] is None:
            return None
        connection = connections[self.using]
        for index, column, converters in self._converters:
            for convert in converters:
                values[index] = convert(values[index], column, connection)
        return self.model.from_db(self.using, self.attnames, values)

    @cached_property
    def _converters(self) -> list[tuple[int, Any, list[Converter]]]:
        """What the ORM's compiler applies to each column read (the backend's, the
        field's own `from_db_value`), for the fields that have any."""
        connection = connections[self.using]
        found = []
        for index, f in enumerate(self.fields):
            column = f.get_col(self.alias)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(
                connection
            )
            if converters:
                found.append((index, column, converters))
        return found


def link(instance: Model, name: str, related: Model | None) -> None:
    """Cache `related` as `instance.<name>`, as `select_related` does: no query to read it."""
    instance._meta.get_field(name).set_cached_value(instance, related)  # type: ignore[union-attr]
