"""Django's PostgreSQL backend, counting connections and statements for /metrics.

The samples are django-prometheus' (`django_db_new_connections_total`,
`django_db_execute_total`, `django_db_query_duration_seconds`, `django_db_errors_total`...),
so its dashboards read them, but counted for less: its backend looks each label set up
again for every statement (two lookups, a timer and an exception counter object each);
here a connection's cursor class holds its label children, bound once per alias, and a
statement costs one count and one observation. Used when METRICS_ENABLED is on.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db import (
    connection_errors_total,
    connections_total,
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)

_cursor_classes: dict[tuple[type, str, str], type] = {}


def counting_cursor(cursor_class: type, alias: str, vendor: str) -> type:
    """`cursor_class` counting what it executes under `alias` and `vendor` (one class per
    combination, made once)."""
    key = (cursor_class, alias, vendor)
    made = _cursor_classes.get(key)
    if made is not None:
        return made
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    class CountingCursor(cursor_class):  # type: ignore[valid-type,misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as exc:
                errors_total.labels(alias, vendor, type(exc).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query: Any, param_list: Any, *args: Any, **kwargs: Any) -> Any:
            count = len(param_list)
            executed.inc(count)
            executed_many.inc(count)
            started = time.perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except Exception as exc:
                errors_total.labels(alias, vendor, type(exc).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    _cursor_classes[key] = CountingCursor
    return CountingCursor


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[misc]
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        params["cursor_factory"] = counting_cursor(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connections_total.labels(self.alias, self.vendor).inc()
        try:
            return super().get_new_connection(conn_params)
        except Exception:
            connection_errors_total.labels(self.alias, self.vendor).inc()
            raise
