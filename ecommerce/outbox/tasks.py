"""The periodic relay of the outbox."""

from __future__ import annotations

from celery import shared_task

from ecommerce.outbox.registry import relay_pending


@shared_task(name="outbox.relay", acks_late=True, ignore_result=True)
def relay_outbox_task() -> int:
    return relay_pending()
