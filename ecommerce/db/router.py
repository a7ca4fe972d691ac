"""Send opted-in reads to the read replica; everything else stays on the primary.

Reads go to the replica (the `replica` alias, configured by `DATABASE_REPLICA_URL`) only
inside `use_replica()`, which selectors wrap around reads that may be a little stale: the
public catalog (category tree, product list pages rendered without the cache). Everything
else reads the primary, because a replica lags by however long replay takes (normally
milliseconds, minutes under a long query or a paused replay) and some reads must see the
write they follow. The rules:

- no replica configured, or none reachable: the primary (so unset is exactly the old app);
- outside `use_replica()`: the primary (order detail, the buyer's own lists, staff reads);
- inside a transaction on the primary: the primary (a read inside a write transaction must
  see that transaction, and a row it locks must be read where it is locked);
- after any write in the same request (or Celery task): the primary for the rest of it, so
  a request never reads around its own write.

A write never goes anywhere but the primary, and migrations run only there.

A replica that refuses connections is skipped for `DATABASE_REPLICA_RETRY_SECONDS`: the
read goes to the primary, logged once per outage, and /health never looks at the replica.
A replica that lags is not detected: the opted-in reads tolerate staleness by design, and
nothing that fills the shared cache reads the replica (a stale fill would outlive the lag
by the cache's TTL).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import structlog
from celery.signals import task_prerun
from django.conf import settings
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Model

REPLICA_DB_ALIAS = "replica"

logger = structlog.get_logger(__name__)

# Depth of nested `use_replica()` scopes in this context (thread, or task on ASGI).
_replica_depth: ContextVar[int] = ContextVar("replica_depth", default=0)
# Set by the first write of a request or task; reset when the next one starts.
_wrote: ContextVar[bool] = ContextVar("wrote_to_primary", default=False)
# Set once the replica connection has answered in this request or task.
_replica_checked: ContextVar[bool] = ContextVar("replica_checked", default=False)

_state_lock = threading.Lock()
_replica_down_until = 0.0


@contextlib.contextmanager
def use_replica() -> Iterator[None]:
    """Let the reads inside go to the replica when it is safe (see the module docstring).

    Only for reads that may be stale by the replica's lag: never wrap a read that must see
    a write just made (an order just placed, a user's own data after they changed it).
    Querysets are routed when evaluated: evaluate them inside the block.
    """
    token = _replica_depth.set(_replica_depth.get() + 1)
    try:
        yield
    finally:
        _replica_depth.reset(token)


def pinned_to_primary() -> bool:
    """True once this request (or task) has written: its reads then stay on the primary."""
    return _wrote.get()


def _start_unit_of_work(**_kwargs: Any) -> None:
    _wrote.set(False)
    _replica_checked.set(False)


request_started.connect(_start_unit_of_work, dispatch_uid="ecommerce.db.router.request")
task_prerun.connect(_start_unit_of_work, dispatch_uid="ecommerce.db.router.task", weak=False)


def replica_configured() -> bool:
    """A `replica` alias on a server or database other than the primary's.

    A mirror of the primary (the test databases, a URL naming the primary) is no replica.
    """
    if REPLICA_DB_ALIAS not in connections.settings:
        return False
    replica = connections[REPLICA_DB_ALIAS].settings_dict
    primary = connections[DEFAULT_DB_ALIAS].settings_dict
    return any(str(replica[key]) != str(primary[key]) for key in ("HOST", "PORT", "NAME"))


def _replica_reachable() -> bool:
    """Open (or health-check) the replica connection; on failure skip it for a while."""
    global _replica_down_until
    if time.monotonic() < _replica_down_until:
        return False
    replica = connections[REPLICA_DB_ALIAS]
    try:
        # Once per request or task: a kept connection the replica dropped (restart,
        # failover) is closed here and reopened, instead of failing the read.
        if (
            not _replica_checked.get()
            and replica.connection is not None
            and not replica.is_usable()
        ):
            replica.close()
        replica.ensure_connection()
        _replica_checked.set(True)
    except DatabaseError as exc:
        with _state_lock:
            first = time.monotonic() >= _replica_down_until
            _replica_down_until = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
        if first:
            logger.warning("replica_unavailable", error=str(exc).strip()[:200])
        with contextlib.suppress(DatabaseError):
            replica.close()
        return False
    return True


def mark_replica_up() -> None:
    """Forget a recorded replica outage (the next opted-in read tries it again)."""
    global _replica_down_until
    with _state_lock:
        _replica_down_until = 0.0


def read_alias() -> str:
    """The alias a read made now would use: `replica` only when every rule allows it."""
    if (
        _replica_depth.get() == 0
        or _wrote.get()
        or not replica_configured()
        or connections[DEFAULT_DB_ALIAS].in_atomic_block
        or not _replica_reachable()
    ):
        return DEFAULT_DB_ALIAS
    return REPLICA_DB_ALIAS


class PrimaryReplicaRouter:
    """Django database router (settings.DATABASE_ROUTERS) for the rules above."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        alias = read_alias()
        if alias == DEFAULT_DB_ALIAS:
            # An instance read from the replica keeps its relations there unless it is
            # unsafe now: then they come from the primary too.
            return DEFAULT_DB_ALIAS if replica_configured() else None
        return alias

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        _wrote.set(True)
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # The replica is a copy of the primary: rows from either belong together.
        pair = {obj1._state.db, obj2._state.db}
        if pair <= {DEFAULT_DB_ALIAS, REPLICA_DB_ALIAS, None}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA_DB_ALIAS else None
