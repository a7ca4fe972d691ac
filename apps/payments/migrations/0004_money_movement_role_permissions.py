"""Support and admins read the money ledger in the admin, as they read payments; nobody
adds, changes or deletes a movement (the ledger is append-only)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "support": (("payments", "view_moneymovement"),),
    "admin": (("payments", "view_moneymovement"),),
}


def grant(apps, schema_editor):
    config = apps.get_app_config("payments")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in GRANTS.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        for app_label, codename in perms:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_money_movement"),
        ("orders", "0002_role_permissions"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
