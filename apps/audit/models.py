"""Audit events: one append-only row per staff change (who, when, what object, before/after).

Append-only in the database: a trigger (migration audit.0001) refuses UPDATE, DELETE and
TRUNCATE on PostgreSQL. The one update it lets through is the foreign key's own
`ON DELETE SET NULL` of the actor, when a user is deleted: `actor_label` keeps who it was.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class AuditSource(models.TextChoices):
    ADMIN = "admin", "admin"
    API = "api", "API"
    COMMAND = "command", "command"


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=255, help_text="The actor's email then, or command:<name> (<OS user>)."
    )
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    action = models.CharField(max_length=64)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, help_text='{field: {"before": x, "after": y}}')
    request_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ("-occurred_at", "-pk")
        indexes = [
            models.Index(fields=["occurred_at", "id"], name="audit_occurred_idx"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_idx"),
            models.Index(fields=["action", "occurred_at"], name="audit_action_idx"),
            models.Index(
                fields=["content_type", "object_id", "occurred_at"], name="audit_object_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr} by {self.actor_label}"
