"""Support and admins refund orders (in several steps, up to what was captured) and read
the refunds, in the admin and through the API (`payments.refund_payment`)."""

from django.db import migrations

from ecommerce.migrations import grant_role_permissions

PERMISSIONS = (("payments", "refund_payment"), ("payments", "view_refund"))
GRANTS = {"support": PERMISSIONS, "admin": PERMISSIONS}


grant, revoke = grant_role_permissions(GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0006_refund"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
