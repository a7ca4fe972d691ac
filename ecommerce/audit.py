"""Who is acting (the audit actor) and the one call through which a staff change is reported.

Cross-cutting machinery, so that no app imports `apps.audit` (the audit app sits beside the
others in the app graph, importing nobody's services): code reports a change here, and the
audit app, when installed, registers the writer that stores it (`set_writer`).

The actor is a context variable, set once per entry point:
- a web request (`AuditActorMiddleware`): `/admin/...` is source "admin", `/api/...` is
  "api". The user is read from `request.user` when a change is reported, not before: DRF
  authenticates inside the view and sets the authenticated user on the Django request too
  (`rest_framework.request.Request.user`), so the API's token user is the actor there, and
  requests that change nothing never resolve a user;
- a management command (`ecommerce.commands.OperatorCommand`): source "command", labelled
  `command:<name> (<OS user>)`;
- a Celery task runs with no actor (`ecommerce.tasks.Task`), also when run eagerly inside a
  request: what a worker does follows from a change already recorded where staff asked.

Only staff changes are recorded: an actor whose user is not staff (no `is_staff`, no
superuser, no role but customer) is no actor, and with no actor `record` does nothing. So a
customer placing an order, and any worker or beat job, leaves no audit event.

`record` writes through the writer in the caller's transaction: a change rolled back leaves
no event, a committed one exactly one. Values are made JSON-safe (Decimal as a string,
dates ISO 8601) and secrets never leave: a field whose name says it holds one (password,
token, secret, key...) is recorded as changed, its values as "[redacted]".
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from django.http import HttpRequest, HttpResponseBase

from ecommerce.api.permissions import Role, roles_of

if TYPE_CHECKING:
    from django.db.models import Model

SOURCE_ADMIN = "admin"
SOURCE_API = "api"
SOURCE_COMMAND = "command"

REDACTED = "[redacted]"
# A field (or JSON key) whose name says it holds a secret is never recorded in clear.
SECRET_NAME = re.compile(
    r"password|passwd|secret|token|api_?key|private|credential|signature|signing|"
    r"card_number|cvc|cvv|(^|_)key$|_hash$",
    re.IGNORECASE,
)
STAFF_EXEMPT_ROLES = frozenset({Role.CUSTOMER.value})
MAX_REPR = 200


@dataclass(frozen=True)
class Actor:
    """Who made a change, as recorded: a user (id and email snapshot) or a command."""

    user_id: int | None
    label: str
    source: str
    request_id: str


@dataclass
class _Scope:
    source: str
    request_id: str = ""
    label: str = ""  # a command's label; empty for requests
    user: Callable[[], Any] | None = None  # read when a change is reported


_scope: ContextVar[_Scope | None] = ContextVar("audit_scope", default=None)


class Writer(Protocol):
    def __call__(
        self,
        *,
        actor: Actor,
        action: str,
        model: type[Model],
        object_id: str,
        object_repr: str,
        changes: dict[str, dict[str, Any]],
    ) -> None: ...


_writer: Writer | None = None


def set_writer(writer: Writer | None) -> None:
    """Register the function that stores a reported change (the audit app does, at ready)."""
    global _writer
    _writer = writer


# --- The actor ------------------------------------------------------------------------------


@contextmanager
def acting(
    *,
    source: str,
    user: Callable[[], Any] | None = None,
    label: str = "",
    request_id: str = "",
) -> Iterator[None]:
    """Changes made inside are by `user()` (read lazily) or, without a user, by `label`."""
    token = _scope.set(_Scope(source=source, request_id=request_id, label=label, user=user))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def without_actor() -> Iterator[None]:
    """Nothing done inside is recorded (worker code, even when run eagerly in a request)."""
    token = _scope.set(None)
    try:
        yield
    finally:
        _scope.reset(token)


def command_label(name: str) -> str:
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        os_user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"command:{name} ({os_user})"


def is_staff(user: Any) -> bool:
    """Staff: may log into the admin, is a superuser, or holds a role beyond customer."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return bool(roles_of(user) - STAFF_EXEMPT_ROLES)


def current_actor() -> Actor | None:
    """The staff actor of the current context, or None (nothing is recorded then)."""
    scope = _scope.get()
    if scope is None:
        return None
    if scope.user is None:
        if not scope.label:
            return None
        return Actor(None, scope.label, scope.source, scope.request_id)
    user = scope.user()
    if not is_staff(user):
        return None
    return Actor(user.pk, user.email, scope.source, scope.request_id)


# --- Reporting a change ---------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """A value as JSON can hold it: Decimal as a string, date/time ISO 8601, UUID as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if SECRET_NAME.search(str(key)) else json_safe(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_safe(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def safe_changes(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """{field: (before, after)} as recorded: JSON-safe, secrets redacted, unchanged dropped."""
    recorded: dict[str, dict[str, Any]] = {}
    for name, (before, after) in changes.items():
        before, after = json_safe(before), json_safe(after)
        if before == after:
            continue
        if SECRET_NAME.search(name):
            before = None if before in (None, "") else REDACTED
            after = None if after in (None, "") else REDACTED
        recorded[name] = {"before": before, "after": after}
    return recorded


def record(
    *,
    action: str,
    model: type[Model],
    object_id: Any,
    object_repr: str | Callable[[], str] = "",
    changes: Mapping[str, tuple[Any, Any]],
    allow_empty: bool = False,
) -> bool:
    """Record one staff change to one object, in the caller's transaction; False when not
    recorded (no staff actor, no audit app installed, or nothing changed).

    `changes` is {field: (before, after)}. Call it inside the transaction that makes the
    change, after the change is made. `object_repr` may be a function, called only when
    the change is recorded.
    """
    if _writer is None:
        return False
    actor = current_actor()
    if actor is None:
        return False
    recorded = safe_changes(changes)
    if not recorded and not allow_empty:
        return False
    _writer(
        actor=actor,
        action=action,
        model=model,
        object_id=str(object_id),
        object_repr=(object_repr() if callable(object_repr) else object_repr)[:MAX_REPR],
        changes=recorded,
    )
    return True


def record_for(
    instance: Model, *, action: str, changes: Mapping[str, tuple[Any, Any]], **options: Any
) -> bool:
    """`record` for a model instance: its class, primary key and str()."""
    return record(
        action=action,
        model=type(instance),
        object_id=instance.pk,
        object_repr=str(instance),
        changes=changes,
        **options,
    )


# --- Web requests ---------------------------------------------------------------------------


def source_of(path: str) -> str | None:
    """ "admin" or "api" for the paths where staff change things; None elsewhere."""
    first = path.lstrip("/").split("/", 1)[0]
    if first == "admin":
        return SOURCE_ADMIN
    if first == "api":
        return SOURCE_API
    return None


class AuditActorMiddleware:
    """The request's user is the audit actor of what its view changes (see the module doc).

    Sits after AuthenticationMiddleware; the user is read only when a change is reported.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        source = source_of(request.path_info)
        if source is None:
            return self.get_response(request)
        with acting(
            source=source,
            user=lambda: getattr(request, "user", None),
            request_id=str(getattr(request, "request_id", "") or ""),
        ):
            return self.get_response(request)
