"""Support reads notifications and webhook endpoints in the admin; admins may also act on them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "support": (
        ("notifications", "view_notification"),
        ("notifications", "view_webhookendpoint"),
    ),
    "admin": (
        ("notifications", "view_notification"),
        ("notifications", "change_notification"),
        ("notifications", "view_webhookendpoint"),
        ("notifications", "change_webhookendpoint"),
    ),
}


def grant(apps, schema_editor):
    config = apps.get_app_config("notifications")
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
    perms = Permission.objects.filter(content_type__app_label="notifications")
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
