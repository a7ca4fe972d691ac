"""Celery configuration that only fails at run time, checked up front."""

from __future__ import annotations

from ecommerce.celery import app


def test_every_task_stops_softly_before_it_is_killed():
    """Celery refuses to run a task whose soft time limit is not below its hard one."""
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"payments.charge_payment", "orders.expire_orders", "outbox.relay"} <= set(ours)
    for name, task in ours.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft < hard, f"{name}: soft {soft} s is not below hard {hard} s"


def test_beat_schedules_only_tasks_that_exist():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
