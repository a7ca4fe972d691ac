"""The outbox table: one row per (event, handler), written in the business transaction."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """One event for one handler task, pending until that task has finished successfully.

    `lease_until` is when the relay may hand the row to the broker again if it is still not
    completed: set at publish (the on-commit hand-off needs no write of its own), extended
    by every hand-off and retry, and moved to "now" when a hand-off fails. `retries` is the
    task's Celery retry count, carried across re-sends so a retry policy keeps counting.
    A row with an empty `task_name` was written before rows were per handler: the relay
    splits it into one row per handler of its topic.
    """

    topic = models.CharField(max_length=100)
    task_name = models.CharField(max_length=200, blank=True, default="")
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    lease_until = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # Hand-offs to the broker attempted (the on-commit one included), and Celery retries.
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # The relay and the backlog metric only ever look at what is not completed.
            models.Index(
                fields=["lease_until"],
                condition=models.Q(completed_at__isnull=True),
                name="outbox_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} -> {self.task_name or '*'} #{self.pk}"
