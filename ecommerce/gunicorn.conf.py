"""gunicorn settings, from the environment (and `.env`, like the Django settings)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import environ

env = environ.Env()
_root = Path(__file__).resolve().parent.parent
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and (_root / ".env").is_file():
    env.read_env(_root / ".env")

# Metrics of all workers add up only in prometheus_client's multiprocess mode, which is
# chosen when prometheus_client is first imported: set it up before importing the project.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")
os.environ.setdefault("METRICS_DIR", str(_root / "var" / "metrics"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ["METRICS_DIR"], "web"))

from ecommerce.observability.logging import build_logging_config  # noqa: E402

bind = f"{env.str('HOST', default='0.0.0.0')}:{env.int('PORT', default=8080)}"  # noqa: S104
# Sync workers: on this kind of machine they beat threads for database-bound work. This one
# drains on SIGTERM: /health/ready fails at once, queued requests are still answered.
workers = env.int("WEB_CONCURRENCY", default=min(4, multiprocessing.cpu_count() * 2))
worker_class = "ecommerce.gunicorn_worker.DrainingSyncWorker"
timeout = env.int("GUNICORN_TIMEOUT_SECONDS", default=30)
# A statement waiting that long on a lock gives its request a 503 instead of letting the
# worker be killed mid-request (read by ecommerce/settings.py in each worker).
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT_SECONDS", str(timeout / 2))
# After SIGTERM, how long workers may drain before the master kills them; keep it above the
# slowest request, and below the orchestrator's own grace period (k8s
# terminationGracePeriodSeconds, minus any preStop sleep).
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT_SECONDS", default=25)
keepalive = env.int("GUNICORN_KEEPALIVE_SECONDS", default=5)
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=10000)
max_requests_jitter = env.int("GUNICORN_MAX_REQUESTS_JITTER", default=1000)
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1")
control_socket_disable = True

# Access lines go through logconfig_dict's structlog handler, once per request, or nowhere
# with ACCESS_LOG=0. `accesslog` stays unset: gunicorn would add its own plain handler to
# that one (two lines per request), and it never turned the access log off by itself
# (see ecommerce/gunicorn_logger.py).
accesslog = None
logger_class = "ecommerce.gunicorn_logger.Logger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
_debug = env.bool("DEBUG", default=not env.str("DATABASE_URL", default=""))
logconfig_dict = build_logging_config(
    json_lines=env.bool("LOG_JSON", default=not _debug),
    level=env.str("LOG_LEVEL", default="INFO").upper(),
    access_log=env.bool("ACCESS_LOG", default=True),
)


def on_starting(server: Any) -> None:
    """Empty this server's metrics directory: files of a previous run would count twice."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges stop counting; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_int(worker: Any) -> None:
    """SIGINT/SIGQUIT (quick shutdown): readiness fails, and the log says the worker quit."""
    if hasattr(worker, "mark_shutting_down"):
        worker.mark_shutting_down()
    worker.log.warning("Worker quitting without draining (pid: %s)", worker.pid)


def worker_abort(worker: Any) -> None:
    """The master found the worker stuck past `timeout` (SIGABRT): log where it was stuck."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
    worker.log.error(
        "Worker timed out after %ss (pid: %s); stack:\n%s", worker.cfg.timeout, worker.pid, stack
    )


def post_fork(server: Any, worker: Any) -> None:
    """Tracing starts in each worker after the fork (exporter threads do not survive one)."""
    from ecommerce.observability.tracing import configure_tracing

    configure_tracing()
