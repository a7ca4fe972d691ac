"""Store one reported change as an AuditEvent, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from apps.audit.models import AuditEvent
from ecommerce.audit import Actor


def write_event(
    *,
    actor: Actor,
    action: str,
    model: type[Model],
    object_id: str,
    object_repr: str,
    changes: dict[str, dict[str, Any]],
) -> None:
    AuditEvent.objects.create(
        actor_id=actor.user_id,
        actor_label=actor.label[:255],
        source=actor.source,
        action=action[:64],
        content_type=ContentType.objects.get_for_model(model),
        object_id=object_id[:64],
        object_repr=object_repr,
        changes=changes,
        request_id=actor.request_id[:128],
    )
