"""Admins read the audit log (admin and API). Nobody adds, changes or deletes events."""

from django.db import migrations

from ecommerce.migrations import grant_role_permissions

GRANTS = {"admin": (("audit", "view_auditevent"),)}

grant, revoke = grant_role_permissions(GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_audit_events"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
