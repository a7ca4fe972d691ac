"""Return rights for the roles: support and admins see returns, decide, receive and refund
them (`approve_return`, `receive_return`, `refund_return`): a return's refund is a partial
refund, which support may make (`payments.refund_payment`, payments 0007)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

STAFF = (
    ("orders", "view_return"),
    ("orders", "approve_return"),
    ("orders", "receive_return"),
    ("orders", "refund_return"),
)
GRANTS = {"support": STAFF, "admin": STAFF}


def grant(apps, schema_editor):
    config = apps.get_app_config("orders")
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
        ("orders", "0011_returns"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
