"""Refuse to run the suite without real PostgreSQL and Redis, and say how to start them."""

from __future__ import annotations

import psycopg2
import redis
from django.conf import settings

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def service_problems() -> list[str]:
    """One line per missing service; empty when both answer within a couple of seconds."""
    problems: list[str] = []
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith(".postgresql"):
        problems.append(
            f"Tests run on PostgreSQL, but DATABASE_URL selects {db['ENGINE']}. "
            "Unset it or point it at PostgreSQL (make test does)."
        )
    else:
        where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        try:
            psycopg2.connect(
                dbname="postgres",
                user=db.get("USER") or None,
                password=db.get("PASSWORD") or None,
                host=db.get("HOST") or None,
                port=db.get("PORT") or None,
                connect_timeout=3,
            ).close()
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0]
            problems.append(
                f"PostgreSQL is unreachable at {where} ({reason}). Start it: {START_POSTGRES}"
            )
    backend = settings.CACHES["default"]["BACKEND"]
    if backend != "django_redis.cache.RedisCache":
        problems.append(f"Tests run on Redis, but the cache backend is {backend}: set REDIS_URL.")
    else:
        url = settings.CACHES["default"]["LOCATION"]
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis is unreachable at {url} ({exc}). Start it: {START_REDIS}")
    return problems
