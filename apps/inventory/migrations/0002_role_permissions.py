"""Give catalog managers and admins the admin rights on variants, attributes, product types,
media, warehouses, stock and shipping zones (the ledger read-only); support views them.

Stock is never changed by a model form: `change_stock` is the right to restock and adjust
through apps.inventory.services in the admin's stock form.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITED = (
    ("catalog", "productvariant"),
    ("catalog", "attribute"),
    ("catalog", "attributevalue"),
    ("catalog", "producttype"),
    ("catalog", "productmedia"),
    ("catalog", "assignedproductattribute"),
    ("catalog", "assignedvariantattribute"),
    ("inventory", "warehouse"),
    ("inventory", "stock"),
    ("shipping", "shippingzone"),
)
READ_ONLY = (("inventory", "stockmovement"),)

MANAGE = tuple(
    (app_label, f"{verb}_{model}")
    for app_label, model in EDITED
    for verb in ("add", "change", "view")
) + tuple((app_label, f"view_{model}") for app_label, model in READ_ONLY)
VIEW = tuple((app_label, f"view_{model}") for app_label, model in EDITED + READ_ONLY)

GRANTS = {"catalog_manager": MANAGE, "admin": MANAGE, "support": VIEW}


def grant(apps, schema_editor):
    for label in ("catalog", "inventory", "shipping"):
        config = apps.get_app_config(label)
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
        ("inventory", "0001_initial"),
        ("shipping", "0001_initial"),
        ("catalog", "0007_stock_leaves_the_catalog"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
