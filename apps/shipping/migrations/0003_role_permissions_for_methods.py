"""Give the roles that manage shipping zones (catalog managers and admins) the admin rights
on shipping methods and their rate bands, deleting included (a band is removed from its
method's page); support views them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("shippingmethod", "shippingrateband")

MANAGE = tuple(
    ("shipping", f"{verb}_{model}")
    for model in MODELS
    for verb in ("add", "change", "delete", "view")
)
VIEW = tuple(("shipping", f"view_{model}") for model in MODELS)

GRANTS = {"catalog_manager": MANAGE, "admin": MANAGE, "support": VIEW}


def grant(apps, schema_editor):
    config = apps.get_app_config("shipping")
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
        ("shipping", "0002_shipping_methods_and_rate_bands"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
