"""gunicorn's sync worker, made to drain on SIGTERM: readiness fails at once, queued work ends.

gunicorn's own sync worker, on SIGTERM (forwarded by the master), finishes the request it
is handling and exits; requests already queued in the listen backlog are reset when the
last worker closes the socket, and the process never says it is going away. Set as
`worker_class` in ecommerce/gunicorn.conf.py, this subclass instead:
- calls `ecommerce.health.mark_shutting_down()` in the signal handler, so the next
  /health/ready it serves answers 503 (gunicorn has no hook that runs in the worker on
  SIGTERM: `worker_int` is SIGINT/SIGQUIT, `worker_exit` comes after the drain);
- keeps accepting until the backlog is empty, so every request that reached the socket
  before or during the drain is answered (readiness probes among them), then exits.
A sync worker is busy with one request at a time, so a probe waits its turn behind the
requests queued before it: a probe timeout shorter than that counts as a failure, which
takes the pod out of the load balancer just the same. The master still kills workers that
outlive `graceful_timeout`, so a client that keeps sending cannot hold shutdown open.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType
from typing import Any

from gunicorn.workers.sync import SyncWorker

from ecommerce.runtime import freeze_loaded_objects


class DrainingSyncWorker(SyncWorker):
    """A sync worker that flips readiness on SIGTERM and drains the backlog before exiting."""

    draining = False
    _mark_shutting_down: Callable[[], None] | None = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # Imported once Django is set up, never in the signal handler (no imports there:
        # the interrupted code may hold the import lock).
        from ecommerce.health import mark_shutting_down

        self._mark_shutting_down = mark_shutting_down
        freeze_loaded_objects()
        # gunicorn says when it forks a worker, not when the worker can serve: the app is
        # loaded after the fork, seconds later on a busy machine.
        self.log.info("Worker ready (pid: %s)", self.pid)

    def mark_shutting_down(self) -> None:
        """Make this process's /health/ready answer 503 (safe in a signal handler)."""
        if self._mark_shutting_down is not None:
            self._mark_shutting_down()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: fail readiness now; stop once nothing is waiting to be accepted."""
        self.mark_shutting_down()
        if not self.booted:  # still loading the app: nothing was accepted yet
            self.alive = False
            return
        if not self.draining:
            self.draining = True
            self.log.info("Worker draining (pid: %s)", self.pid)

    def wait(self, timeout: float) -> Any:
        # The accept loop calls wait() only when accept() found nothing queued: the
        # backlog is empty, so a draining worker is done.
        if self.draining:
            self.alive = False
            return None
        return super().wait(timeout)
