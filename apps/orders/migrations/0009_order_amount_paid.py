"""Orders say what was paid (`amount_paid`): captures net of refunds, lowered by each refund
(partial refunds). Existing paid, fulfilled and refunding orders were paid their total;
every other order holds nothing (refunded ones were refunded in full)."""

from decimal import Decimal

from django.db import migrations, models

ZERO = Decimal("0.00")

BACKFILL = (
    "UPDATE orders_order SET amount_paid = total "
    "WHERE status IN ('paid', 'fulfilled', 'refunding') AND amount_paid = 0"
)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_order_price_breakdown_and_hold"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="amount_paid",
            field=models.DecimalField(db_default=ZERO, decimal_places=2, default=ZERO, max_digits=12),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(amount_paid__gte=0), name="orders_amount_paid_gte_0"
            ),
        ),
    ]
