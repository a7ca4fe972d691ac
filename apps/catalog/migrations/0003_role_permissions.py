"""Give catalog managers (and admins) the catalog's admin permissions, support read access."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "catalog_manager": (
        "view_product", "add_product", "change_product",
        "view_category", "add_category", "change_category",
        "view_stockmovement",
    ),
    "admin": (
        "view_product", "add_product", "change_product",
        "view_category", "add_category", "change_category",
        "view_stockmovement",
    ),
    "support": ("view_product", "view_category", "view_stockmovement"),
}


def grant(apps, schema_editor):
    config = apps.get_app_config("catalog")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="catalog", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="catalog")
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_search_indexes_and_ledger_guard"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
