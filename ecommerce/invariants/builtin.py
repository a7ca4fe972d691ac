"""Checks on the project's own machinery: the outbox."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q

from ecommerce.invariants.registry import CheckContext, Outcome, invariant


def _done_field() -> str:
    """The column that says a message's work is finished.

    `completed_at` (the consumer's effect committed) when the outbox records it, else
    `dispatched_at` (handed to the broker), the weaker statement older schemas make.
    """
    from ecommerce.outbox.models import OutboxMessage

    try:
        OutboxMessage._meta.get_field("completed_at")
    except FieldDoesNotExist:
        return "dispatched_at"
    return "completed_at"


@invariant("outbox.nothing_stale")
def outbox_nothing_stale(context: CheckContext) -> Outcome:
    """No outbox message older than the grace period is still waiting to be done."""
    from ecommerce.outbox.models import OutboxMessage

    done = _done_field()
    messages = OutboxMessage.objects.all()
    if context.since is not None:
        messages = messages.filter(created_at__gte=context.since)
    outcome = Outcome(checked=messages.count())
    outcome.notes.append(f"done means {done} is set")
    stale = messages.filter(
        Q(**{f"{done}__isnull": True}), created_at__lt=context.settled_before()
    ).order_by("pk")
    for message in stale.values("pk", "topic", "payload", "created_at", "attempts", "last_error"):
        outcome.fail(
            f"outbox message {message['pk']} {message['topic']} {message['payload']} written "
            f"{message['created_at'].isoformat()} not done after {message['attempts']} "
            f"attempt(s){': ' + message['last_error'][:120] if message['last_error'] else ''}"
        )
    return outcome
