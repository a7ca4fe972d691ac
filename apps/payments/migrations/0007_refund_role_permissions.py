"""Support and admins refund orders (in several steps, up to what was captured) and read
the refunds, in the admin and through the API (`payments.refund_payment`)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = (("payments", "refund_payment"), ("payments", "view_refund"))
GRANTS = {"support": PERMISSIONS, "admin": PERMISSIONS}


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
        ("payments", "0006_refund"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
