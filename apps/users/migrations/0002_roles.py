"""Create the role groups and give staff roles the model permissions the admin needs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("customer", "support", "catalog_manager", "admin")
# Permissions granted by this migration; apps that land later grant theirs in their own.
ROLE_PERMISSIONS = {
    "support": ("users.view_user",),
    "admin": ("users.view_user", "users.add_user", "users.change_user", "users.delete_user"),
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after migrate; make sure ours exist now.
    users_config = apps.get_app_config("users")
    users_config.models_module = True
    create_permissions(users_config, apps=apps, verbosity=0)
    users_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in ROLE_PERMISSIONS.get(role, ()):
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
