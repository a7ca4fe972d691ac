"""The transactional outbox: `publish()` inside a transaction, handlers run after commit.

Apps register Celery tasks per topic (`register`); a row is written in the caller's
transaction, handed to Celery on commit, and re-sent by the periodic relay until it is
marked dispatched, so a broker outage at commit time loses nothing. Handlers must be
idempotent: a message can be delivered more than once.
"""

from ecommerce.outbox.registry import publish, register, relay_pending

__all__ = ["publish", "register", "relay_pending"]
