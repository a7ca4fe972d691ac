"""Re-create the role groups (and the tax classes) that the data migrations create.

Tests that change a role's permissions put them back with `restore_role_groups()`;
tests/flush.py calls both after a transactional test changed or emptied them.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from django.contrib.auth.models import Group, Permission

_users = import_module("apps.users.migrations.0002_roles")
_catalog = import_module("apps.catalog.migrations.0003_role_permissions")
_orders = import_module("apps.orders.migrations.0002_role_permissions")
_order_actions = import_module("apps.orders.migrations.0003_role_action_permissions")
_returns = import_module("apps.orders.migrations.0012_return_role_permissions")
_notifications = import_module("apps.notifications.migrations.0002_role_permissions")
_all_endpoints = import_module(
    "apps.notifications.migrations.0005_admin_views_all_webhook_endpoints"
)
_inventory = import_module("apps.inventory.migrations.0002_role_permissions")
_pricing = import_module("apps.pricing.migrations.0003_role_permissions")
_shipping_methods = import_module("apps.shipping.migrations.0003_role_permissions_for_methods")
_money_ledger = import_module("apps.payments.migrations.0004_money_movement_role_permissions")
_audit = import_module("apps.audit.migrations.0002_admin_reads_the_audit_log")
_refunds = import_module("apps.payments.migrations.0007_refund_role_permissions")
_tax_classes = import_module("apps.pricing.migrations.0002_tax_classes")


@cache
def role_grants() -> dict[str, list[tuple[str, str]]]:
    """Every role's (app label, codename) pairs, as the grant migrations leave them."""
    grants: dict[str, list[tuple[str, str]]] = {role: [] for role in _users.ROLES}
    for role, dotted in _users.ROLE_PERMISSIONS.items():
        grants[role].extend(tuple(name.split(".")) for name in dotted)
    for role, codenames in _catalog.GRANTS.items():
        # The ledger moved to apps.inventory, whose grants name it now.
        grants[role].extend(
            ("catalog", codename) for codename in codenames if codename != "view_stockmovement"
        )
    for role, perms in _orders.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _order_actions.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _returns.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _notifications.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _all_endpoints.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _inventory.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _pricing.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _shipping_methods.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _money_ledger.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _audit.GRANTS.items():
        grants[role].extend(perms)
    for role, perms in _refunds.GRANTS.items():
        grants[role].extend(perms)
    return grants


def restore_role_groups() -> None:
    """Create the missing role groups and grant what they lack, in four queries."""
    grants = role_grants()
    groups = dict(Group.objects.filter(name__in=grants).values_list("name", "pk"))
    if len(groups) < len(grants):
        Group.objects.bulk_create(
            [Group(name=role) for role in grants if role not in groups], ignore_conflicts=True
        )
        groups = dict(Group.objects.filter(name__in=grants).values_list("name", "pk"))
    permissions = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    through = Group.permissions.through
    through.objects.bulk_create(
        [
            through(group_id=groups[role], permission_id=permissions[grant])
            for role, perms in grants.items()
            for grant in perms
        ],
        ignore_conflicts=True,
    )


def restore_tax_classes() -> None:
    from apps.pricing.models import TaxClass

    TaxClass.objects.bulk_create(
        [TaxClass(slug=slug, name=name) for slug, name in _tax_classes.TAX_CLASSES],
        ignore_conflicts=True,
    )
