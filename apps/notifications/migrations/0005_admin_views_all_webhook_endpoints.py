"""Webhook endpoints are their owners': in the admin, only the admin role sees them (with
`view_all_webhook_endpoints`); support's plain view permission no longer shows them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "admin": (("notifications", "view_all_webhook_endpoints"),),
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
    perms = Permission.objects.filter(
        content_type__app_label="notifications", codename="view_all_webhook_endpoints"
    )
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_endpoint_deletion_keeps_deliveries"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
