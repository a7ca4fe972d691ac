"""The models whose saves, deletions and many-to-many changes are staff changes.

A model listed here is audited from its signals (pre_save reads the fields as stored,
post_save and post_delete record the difference), whoever saves it: the admin's forms,
a service called by the API or a command. A change made with `QuerySet.update()` sends no
signal: those models are audited instead by a one-line `ecommerce.audit.record(...)` in the
service that changes them (stock in apps.inventory, order status in apps.orders, rate bands
in apps.shipping), and are not listed here, so that one change is never recorded twice.

Models are named by label: the audit app imports no other app. Nothing is read or written
unless a staff actor is acting (ecommerce.audit.current_actor), so customers' and workers'
saves cost nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from ecommerce import audit

# Bookkeeping every row has, never a change of its own.
IGNORED = frozenset({"id", "created_at", "updated_at"})


@dataclass(frozen=True)
class Tracked:
    """Fields of a model to audit: `only` those, else every concrete field but `exclude`."""

    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    m2m: tuple[str, ...] = ()


TRACKED: dict[str, Tracked] = {
    # Prices: a product's own price follows its cheapest variant (a derived UPDATE, not
    # recorded); the variant's price is what staff set.
    "catalog.Product": Tracked(),
    "catalog.ProductVariant": Tracked(),
    "catalog.Category": Tracked(),
    "inventory.Warehouse": Tracked(m2m=("shipping_zones",)),
    "shipping.ShippingZone": Tracked(),
    "shipping.ShippingMethod": Tracked(),
    # Settings, taxes, vouchers, promotions. A voucher's use count moves with orders.
    "pricing.TaxClass": Tracked(),
    "pricing.TaxRate": Tracked(),
    "pricing.TaxSettings": Tracked(),
    "pricing.Voucher": Tracked(exclude=("used_count",), m2m=("products", "categories")),
    "pricing.Promotion": Tracked(m2m=("products", "categories")),
    # Roles: accounts' access, their groups and permissions, and each role's permissions.
    "users.User": Tracked(
        only=("email", "is_active", "is_staff", "is_superuser", "password"),
        m2m=("groups", "user_permissions"),
    ),
    "auth.Group": Tracked(m2m=("permissions",)),
}

# Verbs for the many-to-many changes that have a name of their own.
M2M_VERBS = {
    ("users.User", "groups"): ("role.grant", "role.revoke"),
    ("users.User", "user_permissions"): ("permission.grant", "permission.revoke"),
    ("auth.Group", "permissions"): ("role.permission.grant", "role.permission.revoke"),
}

_fields: dict[type[models.Model], tuple[models.Field[Any, Any], ...]] = {}
# through model -> (owner model, field name on the owner)
_m2m: dict[type[models.Model], tuple[type[models.Model], str]] = {}


def _concrete(model: type[models.Model], spec: Tracked) -> tuple[models.Field[Any, Any], ...]:
    fields = []
    for field in model._meta.concrete_fields:
        if spec.only and field.name not in spec.only:
            continue
        if field.name in IGNORED or field.name in spec.exclude or field.primary_key:
            continue
        fields.append(field)
    return tuple(fields)


def _clean(field: models.Field[Any, Any], value: Any) -> Any:
    """A value as the column holds it: `"10"` and `Decimal("10")` read as the stored 10.00."""
    if value is None or field.is_relation:
        return value
    try:
        value = field.to_python(value)
    except (ValidationError, TypeError, ValueError):  # recorded as given
        return value
    if isinstance(field, models.DecimalField) and isinstance(value, Decimal):
        try:
            return value.quantize(Decimal(1).scaleb(-field.decimal_places))
        except InvalidOperation:
            return value
    return value


def _values(instance: models.Model, fields: Iterable[models.Field[Any, Any]]) -> dict[str, Any]:
    return {field.name: _clean(field, getattr(instance, field.attname)) for field in fields}


def _before_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    instance._audit_before = None  # type: ignore[attr-defined]
    if raw or instance._state.adding or instance.pk is None or audit.current_actor() is None:
        return
    fields = _fields[sender]
    if update_fields is not None:
        named = set(update_fields)
        fields = tuple(field for field in fields if field.name in named or field.attname in named)
    if not fields:
        return
    stored = (
        sender._base_manager.using(kwargs.get("using"))
        .filter(pk=instance.pk)
        .values(*(field.attname for field in fields))
        .first()
    )
    if stored is not None:
        instance._audit_before = {  # type: ignore[attr-defined]
            field.name: _clean(field, stored[field.attname]) for field in fields
        }


def _after_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    before: dict[str, Any] | None = getattr(instance, "_audit_before", None)
    instance._audit_before = None  # type: ignore[attr-defined]
    if raw or audit.current_actor() is None:
        return
    if created:
        after = _values(instance, _fields[sender])
        audit.record_for(
            instance,
            action="create",
            changes={name: (None, value) for name, value in after.items()},
            allow_empty=True,
        )
    elif before is not None:
        after = _values(instance, (sender._meta.get_field(name) for name in before))
        changed = {name: (before[name], after[name]) for name in before}
        audit.record_for(
            instance,
            action="update",
            changes={name: pair for name, pair in changed.items() if pair[0] != pair[1]},
        )


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if audit.current_actor() is None:
        return
    values = _values(instance, _fields[sender])
    audit.record_for(
        instance,
        action="delete",
        changes={name: (value, None) for name, value in values.items()},
        allow_empty=True,
    )


def _related(owner: models.Model, name: str) -> list[str]:
    return sorted(str(item) for item in getattr(owner, name).all())


def _m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    if action not in {
        "pre_add",
        "pre_remove",
        "pre_clear",
        "post_add",
        "post_remove",
        "post_clear",
    }:
        return
    owner_model, name = _m2m[sender]
    if audit.current_actor() is None:
        return
    if not reverse:
        owners: list[models.Model] = [instance]
    elif action.endswith("clear"):
        if action == "post_clear":  # who was related is known only before the clear
            owners = getattr(instance, "_audit_m2m_owners", [])
        else:
            accessor = owner_model._meta.get_field(name).related_query_name()
            owners = list(owner_model._base_manager.filter(**{accessor: instance.pk}))
            instance._audit_m2m_owners = owners  # type: ignore[attr-defined]
    else:
        owners = list(owner_model._base_manager.filter(pk__in=pk_set or ()))
    state: dict[tuple[str, Any], list[str]] = instance.__dict__.setdefault("_audit_m2m", {})
    for owner in owners:
        key = (name, owner.pk)
        if action.startswith("pre_"):
            state[key] = _related(owner, name)
            continue
        before = state.pop(key, None)
        if before is None:
            continue
        after = _related(owner, name)
        grant, revoke = M2M_VERBS.get((owner_model._meta.label, name), ("update", "update"))
        verb = grant if action == "post_add" else revoke
        audit.record_for(owner, action=verb, changes={name: (before, after)})


def connect() -> None:
    """Connect the signals of every tracked model that is installed."""
    for label, spec in TRACKED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        _fields[model] = _concrete(model, spec)
        uid = f"audit:{label}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
        post_save.connect(_after_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_after_delete, sender=model, dispatch_uid=uid)
        for name in spec.m2m:
            through = model._meta.get_field(name).remote_field.through  # type: ignore[union-attr]
            _m2m[through] = (model, name)
            m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=f"{uid}.{name}")
