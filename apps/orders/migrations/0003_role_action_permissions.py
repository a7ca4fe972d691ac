"""Precise order permissions, granted to the admin role only.

Support reads orders in the admin but changes none of them there, and places an order on a
customer's behalf only when granted `orders.place_order_for_customer` explicitly (per user,
or through a group an administrator makes): being support does not imply it.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [
    ("place_order_for_customer", "Can place an order on a customer's behalf"),
    ("cancel_order", "Can cancel any order in the admin"),
    ("refund_order", "Can refund a paid order in the admin"),
    ("fulfil_order", "Can mark a paid order fulfilled in the admin"),
    ("retry_order_payment", "Can request a pending order's payment again in the admin"),
]
GRANTS = {"admin": tuple(("orders", codename) for codename, _name in PERMISSIONS)}


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
    perms = Permission.objects.filter(
        content_type__app_label="orders", codename__in=[c for c, _n in PERMISSIONS]
    )
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_role_permissions")]

    operations = [
        migrations.AlterModelOptions(name="order", options={"permissions": PERMISSIONS}),
        migrations.RunPython(grant, revoke),
    ]
