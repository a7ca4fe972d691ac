"""The transactional outbox: `publish()` inside a transaction, handlers run after commit.

Apps register Celery tasks per topic (`register`); one row per handler is written in the
caller's transaction, handed to Celery on commit, and re-sent by the periodic relay until
its task has finished successfully (ecommerce.tasks.Task records that), so neither a
broker that loses messages nor a task that dies loses the event. Handlers must be
idempotent: a message can be delivered more than once.
"""

from ecommerce.outbox.registry import (
    hand_off_on_commit,
    handlers_for,
    prepare,
    publish,
    register,
    relay_pending,
)

__all__ = ["hand_off_on_commit", "handlers_for", "prepare", "publish", "register", "relay_pending"]
