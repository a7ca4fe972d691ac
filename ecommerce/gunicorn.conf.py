"""gunicorn settings, from the environment (and `.env`, like the Django settings)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import environ

from ecommerce.observability.logging import build_logging_config

env = environ.Env()
_dotenv = Path(__file__).resolve().parent.parent / ".env"
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and _dotenv.is_file():
    env.read_env(_dotenv)

bind = f"{env.str('HOST', default='0.0.0.0')}:{env.int('PORT', default=8080)}"  # noqa: S104
# Sync workers: on this kind of machine they beat threads for database-bound work.
workers = env.int("WEB_CONCURRENCY", default=min(4, multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = env.int("GUNICORN_TIMEOUT_SECONDS", default=30)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT_SECONDS", default=25)
keepalive = env.int("GUNICORN_KEEPALIVE_SECONDS", default=5)
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=10000)
max_requests_jitter = env.int("GUNICORN_MAX_REQUESTS_JITTER", default=1000)
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1")
control_socket_disable = True

accesslog = "-" if env.bool("ACCESS_LOG", default=True) else None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
_debug = env.bool("DEBUG", default=not env.str("DATABASE_URL", default=""))
logconfig_dict = build_logging_config(
    json_lines=env.bool("LOG_JSON", default=not _debug),
    level=env.str("LOG_LEVEL", default="INFO").upper(),
)
