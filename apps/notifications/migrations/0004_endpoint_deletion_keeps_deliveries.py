"""Deleting a webhook endpoint keeps its deliveries (SET_NULL, the URL kept on each), and
the permission that shows every owner's endpoints in the admin."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_retry_schedule_and_secret_overlap"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="webhookendpoint",
            options={
                "permissions": [
                    ("view_all_webhook_endpoints", "Can view every owner's webhook endpoints")
                ]
            },
        ),
        migrations.RemoveConstraint(
            model_name="notification",
            name="notif_dedup_without_endpoint",
        ),
        migrations.RemoveConstraint(
            model_name="notification",
            name="notif_endpoint_iff_webhook",
        ),
        migrations.AddField(
            model_name="notification",
            name="endpoint_url",
            field=models.URLField(blank=True, max_length=2000),
        ),
        migrations.AlterField(
            model_name="notification",
            name="endpoint",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="notifications",
                to="notifications.webhookendpoint",
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.UniqueConstraint(
                condition=models.Q(("channel", "email"), ("endpoint__isnull", True)),
                fields=("event", "subject", "channel"),
                name="notif_dedup_without_endpoint",
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("channel", "webhook"), ("endpoint__isnull", False)),
                    models.Q(("channel", "webhook"), ("endpoint_url__gt", "")),
                    models.Q(("channel", "email"), ("endpoint__isnull", True)),
                    _connector="OR",
                ),
                name="notif_endpoint_iff_webhook",
            ),
        ),
    ]
