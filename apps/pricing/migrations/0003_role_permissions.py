"""Give catalog managers and admins the admin rights on tax classes and rates, the tax
settings, vouchers and promotions; support views them all, voucher uses included.

Voucher uses are never edited by hand: they are written and released by
apps.pricing.services as orders are placed and released, so everyone only views them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITED = (
    ("pricing", "taxclass"),
    ("pricing", "taxrate"),
    ("pricing", "voucher"),
    ("pricing", "promotion"),
)
CHANGED = (("pricing", "taxsettings"),)
READ_ONLY = (("pricing", "voucheruse"),)

MANAGE = (
    tuple(
        (app_label, f"{verb}_{model}")
        for app_label, model in EDITED
        for verb in ("add", "change", "delete", "view")
    )
    + tuple(
        (app_label, f"{verb}_{model}")
        for app_label, model in CHANGED
        for verb in ("change", "view")
    )
    + tuple((app_label, f"view_{model}") for app_label, model in READ_ONLY)
)
VIEW = tuple((app_label, f"view_{model}") for app_label, model in EDITED + CHANGED + READ_ONLY)

GRANTS = {"catalog_manager": MANAGE, "admin": MANAGE, "support": VIEW}


def grant(apps, schema_editor):
    config = apps.get_app_config("pricing")
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
        ("pricing", "0002_tax_classes"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
