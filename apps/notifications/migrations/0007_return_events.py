"""Notifications of a return's steps: requested, approved, rejected, received, refunded."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0006_refund_events"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="event",
            field=models.CharField(
                choices=[
                    ("user_registered", "User registered"),
                    ("order_placed", "Order placed"),
                    ("order_paid", "Order paid"),
                    ("payment_failed", "Payment failed"),
                    ("order_cancelled", "Order cancelled"),
                    ("order_expired", "Order expired"),
                    ("order_fulfilled", "Order fulfilled"),
                    ("order_refunded", "Order refunded"),
                    ("return_requested", "Return requested"),
                    ("return_approved", "Return approved"),
                    ("return_rejected", "Return rejected"),
                    ("return_received", "Return received"),
                    ("return_refunded", "Return refunded"),
                    ("order_partially_refunded", "Order partially refunded"),
                    ("payment_compensated", "Payment refunded (compensation)"),
                    ("ping", "Ping"),
                    ("webhook_disabled", "Webhook endpoint disabled"),
                    ("webhook_failed", "Webhook delivery failed"),
                ],
                max_length=30,
            ),
        ),
    ]
