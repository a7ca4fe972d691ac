"""Rows per handler, completion and leases instead of "dispatched".

A row already handed to the broker under the old rule counts as completed (its consumer
ran long ago, or never will: nothing can tell now); a row never handed over is due at
once, and the relay splits it into one row per handler (its `task_name` is empty).
"""

from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Coalesce


def completed_and_due(apps, schema_editor):
    OutboxMessage = apps.get_model("outbox", "OutboxMessage")
    OutboxMessage.objects.filter(dispatched_at__isnull=False).update(
        completed_at=F("dispatched_at")
    )
    OutboxMessage.objects.update(lease_until=Coalesce(F("dispatched_at"), F("created_at")))


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="task_name",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="lease_until",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="completed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="retries",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(completed_and_due, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="outboxmessage",
            name="lease_until",
            field=models.DateTimeField(),
        ),
        migrations.RemoveIndex(model_name="outboxmessage", name="outbox_pending_idx"),
        migrations.RemoveField(model_name="outboxmessage", name="dispatched_at"),
        migrations.AddIndex(
            model_name="outboxmessage",
            index=models.Index(
                condition=models.Q(("completed_at__isnull", True)),
                fields=["lease_until"],
                name="outbox_due_idx",
            ),
        ),
    ]
