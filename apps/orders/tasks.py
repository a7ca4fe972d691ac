"""Periodic order jobs."""

from __future__ import annotations

from celery import shared_task

from apps.orders import services


@shared_task(name="orders.expire_orders", acks_late=True, soft_time_limit=240, time_limit=300)
def expire_orders_task() -> int:
    return services.expire_orders()
