"""Stock ledger rows may carry the reason `return`: units a customer sent back."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0010_product_type_tax_class"),
        ("inventory", "0002_role_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="stockmovement",
            name="inventory_movement_reason",
        ),
        migrations.AlterField(
            model_name="stockmovement",
            name="reason",
            field=models.CharField(
                choices=[
                    ("restock", "Restock"),
                    ("adjustment", "Adjustment"),
                    ("order", "Order"),
                    ("cancel", "Cancel"),
                    ("expiry", "Expiry"),
                    ("return", "Return"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="stockmovement",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("reason__in", ["restock", "adjustment", "order", "cancel", "expiry", "return"])
                ),
                name="inventory_movement_reason",
            ),
        ),
    ]
