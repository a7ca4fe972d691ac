"""Return rights for the roles: support and admins see returns, decide, receive and refund
them (`approve_return`, `receive_return`, `refund_return`): a return's refund is a partial
refund, which support may make (`payments.refund_payment`, payments 0007)."""

from django.db import migrations

from ecommerce.migrations import grant_role_permissions

STAFF = (
    ("orders", "view_return"),
    ("orders", "approve_return"),
    ("orders", "receive_return"),
    ("orders", "refund_return"),
)
GRANTS = {"support": STAFF, "admin": STAFF}


grant, revoke = grant_role_permissions(GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_returns"),
        ("users", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
