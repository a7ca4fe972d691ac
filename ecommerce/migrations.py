"""Helpers for data migrations: grant role groups their permissions, and take them back.

The role grant migrations of the apps all repeat one body (create the app's permissions,
which Django otherwise creates only after the last migration, then add them to each role's
group); `grant_role_permissions` is that body once. Migrations applied before it existed
keep their own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib.auth.management import create_permissions

Grants = Mapping[str, Iterable[tuple[str, str]]]  # role -> (app_label, codename), ...
MigrationFunction = Callable[[Any, Any], None]


def _create_permissions(apps: Any, app_labels: Iterable[str]) -> None:
    for label in app_labels:
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None


def grant_role_permissions(grants: Grants) -> tuple[MigrationFunction, MigrationFunction]:
    """(grant, revoke) for `migrations.RunPython`: `grant` gives each role (its group,
    created if missing) the permissions named; `revoke` removes those same permissions
    from the roles that exist.

    `grants` is {role: ((app_label, codename), ...)}. A permission that does not exist once
    its app's permissions are created is an error (Permission.DoesNotExist): a typo fails
    the migration instead of granting nothing.
    """
    frozen = {role: tuple(perms) for role, perms in grants.items()}
    app_labels = sorted({app_label for perms in frozen.values() for app_label, _ in perms})

    def grant(apps: Any, schema_editor: Any) -> None:
        _create_permissions(apps, app_labels)
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        for role, perms in frozen.items():
            group, _ = Group.objects.get_or_create(name=role)
            for app_label, codename in perms:
                group.permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )

    def revoke(apps: Any, schema_editor: Any) -> None:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
        for role, perms in frozen.items():
            group = Group.objects.filter(name=role).first()
            if group is None:
                continue
            for app_label, codename in perms:
                group.permissions.remove(
                    *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
                )

    return grant, revoke
