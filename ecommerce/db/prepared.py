"""Statements PREPAREd once per database connection and EXECUTEd after (PostgreSQL).

PostgreSQL plans every statement it is sent. The hot statements of the order and checkout
paths are planned for longer than they run: the stock allocation (one CTE that locks,
splits, updates and writes the ledger) cost 970 us of the server's CPU as sent and 210 us
as a prepared statement; the tax rates 50 us against nothing measurable. A prepared
statement is planned once (PostgreSQL's `plan_cache_mode = auto` keeps a generic plan when
it is no worse than planning each time) and re-analysed by the server when a table it reads
changes.

`execute(cursor, (sql, params), ...)` sends its statements in one round trip, each as
`EXECUTE`, with a `PREPARE` before it the first time this connection sees it. The SQL is
written as psycopg2 takes it (`%s` or `%(name)s` placeholders); a statement is named after
a digest of its text, so one whose text varies (a VALUES list per line count) is one
prepared statement per variant. A connection that would hold more than `_PER_CONNECTION`
starts over with `DEALLOCATE ALL`, and so does one whose last round trip failed (whether
its PREPARE took is then unknown, since prepared statements outlive a rollback; or the
server lost one, or refused a plan that a schema change outdated).

Off (every statement sent as written) where the backend is not PostgreSQL or
DATABASE_PREPARED_STATEMENTS is false: behind PgBouncer in transaction mode, a statement
prepared on one server connection is not there on the next (docs/capacity.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

Params = Sequence[Any] | Mapping[str, Any]

# Statements prepared on one connection at most: the variants of the order path's
# statements by line count stay well under it.
_PER_CONNECTION = 256
# Statement texts this process keeps parsed; past it, it starts again (texts vary by line
# count and destination, so they are bounded, but by the data, not by the code).
_PER_PROCESS = 4096
# psycopg2's placeholders, and its escaped percent sign (kept: the PREPARE is sent through
# psycopg2's formatting too).
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s|%s")


@dataclass(frozen=True)
class _Statement:
    name: str
    body: str  # the statement with $n placeholders, as PREPARE takes it
    names: tuple[str, ...] | None  # the parameters' names in $n order; None: positional
    arity: int

    def arguments(self, params: Params) -> list[Any]:
        if self.arity and isinstance(params, Mapping) != (self.names is not None):
            raise ValueError(
                f"{self.name} takes {'named' if self.names else 'positional'} parameters"
            )
        if isinstance(params, Mapping):
            values = [params[name] for name in self.names or ()]
        else:
            values = list(params)
        if len(values) != self.arity:
            raise ValueError(f"{self.name} takes {self.arity} parameters, got {len(values)}")
        return values

    def execute(self) -> str:
        if not self.arity:
            return f"EXECUTE {self.name}"
        return f"EXECUTE {self.name}({', '.join(['%s'] * self.arity)})"


_statements: dict[str, _Statement] = {}
_by_name: dict[str, _Statement] = {}


def _statement(sql: str) -> _Statement:
    """`sql` as a statement to prepare (made once per text, for the process)."""
    found = _statements.get(sql)
    if found is not None:
        return found
    if len(_statements) >= _PER_PROCESS:
        _statements.clear()
        _by_name.clear()
    names: list[str] = []
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group(0) == "%%":
            return "%%"
        name = match.group(1)
        if name is None:
            positional += 1
            return f"${positional}"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    body = _PLACEHOLDER.sub(number, sql)
    if names and positional:
        raise ValueError("a statement takes %s or %(name)s placeholders, not both")
    digest = hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
    made = _Statement(
        name=f"ec_{digest}",
        body=body,
        names=tuple(names) if names else None,
        arity=len(names) or positional,
    )
    _statements[sql] = made
    _by_name[made.name] = made
    return made


def as_written(sent: str) -> str:
    """What `execute` sent (as a captured query shows it), with each prepared statement's
    text, $n placeholders and all, in place of its PREPARE and EXECUTE: for a reader who
    wants the statements (tests that look at them, a log)."""
    sent = sent.removeprefix("DEALLOCATE ALL; ")
    for name in set(re.findall(r"\bEXECUTE (ec_[0-9a-f]+)", sent)):
        statement = _by_name[name]
        sent = sent.replace(f"PREPARE {name} AS {statement.body}; ", "")
        sent = re.sub(
            rf"\bEXECUTE {name}(\(.*?\))?(?=; |$)",
            lambda _, body=statement.body: body,
            sent,
            flags=re.S,
        )
    return sent


@dataclass
class _Connection:
    """What one server connection has prepared."""

    raw: Any
    prepared: set[str] = field(default_factory=set)
    unknown: bool = False  # what the server holds is not known: deallocate all first


def _state(db: Any) -> _Connection:
    raw = db.connection
    state: _Connection | None = getattr(db, "_prepared_statements", None)
    if state is None or state.raw is not raw:
        state = _Connection(raw=raw)
        db._prepared_statements = state
    return state


def enabled(db: Any) -> bool:
    return db.vendor == "postgresql" and bool(settings.DATABASE_PREPARED_STATEMENTS)


def execute(cursor: Any, *statements: tuple[str, Params]) -> None:
    """Run `statements` ((sql, params) each) in one round trip through `cursor` (a Django
    cursor), as prepared statements of its connection where that is on; the cursor then
    holds the last statement's result. Statements sent together take %s placeholders."""
    if len(statements) > 1 and any(isinstance(params, Mapping) for _, params in statements):
        raise ValueError("statements sent together take %s placeholders")
    db = cursor.db
    if not enabled(db):
        if len(statements) == 1:
            cursor.execute(*statements[0])
        else:
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
        return
    state = _state(db)
    named = [_statement(sql) for sql, _ in statements]
    new = {statement.name for statement in named} - state.prepared
    if new and len(state.prepared) + len(new) > _PER_CONNECTION:
        state.unknown = True
    parts: list[str] = []
    if state.unknown:
        parts.append("DEALLOCATE ALL")
        state.prepared.clear()
        new = {statement.name for statement in named}
    arguments: list[Any] = []
    for statement, (_sql, params) in zip(named, statements, strict=True):
        if statement.name in new:
            parts.append(f"PREPARE {statement.name} AS {statement.body}")
            new.discard(statement.name)
        parts.append(statement.execute())
        arguments += statement.arguments(params)
    try:
        cursor.execute("; ".join(parts), arguments)
    except Exception:
        # A PREPARE of this round trip may have taken or not; or the server lost one
        # (DEALLOCATE, a pooler's reset) or refused a plan the schema outdated: start over.
        state.unknown = True
        raise
    state.unknown = False
    state.prepared.update(statement.name for statement in named)
