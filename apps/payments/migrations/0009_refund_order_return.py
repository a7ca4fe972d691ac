"""A refund may pay back a return (other refunds name none); one live refund per return."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_return_role_permissions"),
        ("payments", "0008_payment_capture_lifecycle"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="order_return",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="orders.return",
            ),
        ),
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("order_return__isnull", False), ("status__in", ["pending", "succeeded"])
                ),
                fields=("order_return",),
                name="payments_refund_one_live_per_return",
            ),
        ),
    ]
