"""Warm public reads answered before Django's handler, with what Django would have said.

A warm product detail or list page is a stamped entry in Redis (ecommerce/caching.py).
Through Django, those bytes pass a dozen middlewares, URL resolving, DRF's request,
authentication, content negotiation and throttle, which cost several times the read
itself (docs/performance.md). `FastReads` wraps the WSGI application and answers such a
GET itself, and only when Django would answer it with the same bytes:

- the path matches a registered `FastRoute` (apps register theirs in `ready()`), the
  method is GET, and the request is anonymous: no Authorization header (staff read other
  bodies, and a bad token is a 401);
- content negotiation would pick JSON (no Accept, or only JSON or wildcard ranges, and no
  `format` parameter), the Host is allowed and no HTTPS redirect is due;
- the cache answers, has not failed just now and owes no replayed invalidation;
- the entry is there (not the "absent" marker of a 404);
- with rate limiting on, the request's counter goes in the same round trip and is under
  its limit (over it, Django answers the 429 and counts it again: a refused client's
  remaining count only gets lower);
- this process has already served a 200 on that route through Django, whose headers the
  fast path keeps as the route's template (`_Template`): security headers, CSP, Vary,
  Cache-Control, Allow, whatever the stack adds, per scheme. Only the headers that change
  per request are made here: the validators, Content-Length, X-Request-ID, X-Trace-Id and
  RateLimit-*.

Anything else goes to Django untouched, which also fills the cache, so the next read is
fast. Answers are counted in `ecommerce_fast_reads_total` and in the same request metrics
(view, method, status) and cache metrics as Django's; each is a server span of the route's
name, with the trace context of the request, at the tracer's sampling. A conditional GET
whose validators match is a 304 from the entry, as `ecommerce.api.conditional` answers it.

One Redis round trip per read: a Lua script reads the route's key and, for a two-step
lookup (a SKU's product id, the list generation), the key that value names.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve
from django.utils.http import http_date
from redis.exceptions import NoScriptError

from ecommerce import caching
from ecommerce.api import conditional, ratelimit
from ecommerce.api.middleware import REQUEST_ID_HEADER, TRACE_ID_HEADER, request_id_from
from ecommerce.observability.metrics import CACHE_REQUESTS, FAST_READS
from ecommerce.observability.tracing import record_server_span

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Headers made per request, never kept in a route's template.
_PER_REQUEST = frozenset(
    name.lower()
    for name in (
        "ETag",
        "Last-Modified",
        "Content-Length",
        "Date",
        "Server",
        REQUEST_ID_HEADER,
        TRACE_ID_HEADER,
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
        "Retry-After",
    )
)
# Accept ranges for which DRF's negotiation picks the JSON renderer, whatever else is sent.
_JSON_RANGES = frozenset({"*/*", "application/*", "application/json"})

# KEYS[1]: the route's key. ARGV: the prefix and suffix of a second key around the first
# value ("" and "": no second step), and the first value when KEYS[1] is missing ("": a
# miss). The second key is read in the same script: one round trip.
_READ = """
local value = redis.call('GET', KEYS[1])
if not value then
  if ARGV[3] == '' then return false end
  value = ARGV[3]
end
if ARGV[1] == '' and ARGV[2] == '' then return value end
return redis.call('GET', ARGV[1] .. value .. ARGV[2])
"""


@dataclass(frozen=True)
class CacheLookup:
    """Where a read's entry is in the cache (unprefixed keys, as `django.core.cache` takes
    them): under `key`, or, with `then`, under `then[0] + <the value under key> + then[1]`,
    where a missing `key` reads as `default` (a miss when None)."""

    key: str
    then: tuple[str, str] | None = None
    default: str | None = None


@dataclass(frozen=True)
class FastRoute:
    """A public GET whose warm answer is a stamped cache entry.

    `path` must match the whole PATH_INFO the way the URLconf does; `lookup` turns the
    match and the query into the entry's place, or None when Django must answer (a query
    the route does not key on, a lookup Django refuses). `cache_name` labels the cache
    metrics as the route's read-through does; `rate_limit_scope` is the throttle's scope.
    """

    cache_name: str
    path: re.Pattern[str]
    lookup: Callable[[re.Match[str], WSGIRequest], CacheLookup | None]
    rate_limit_scope: str = ratelimit.READS


_routes: list[FastRoute] = []


def register(route: FastRoute) -> None:
    """Add `route` (an app's `ready()`); the first route whose path matches is used."""
    if route not in _routes:
        _routes.append(route)


def routes() -> tuple[FastRoute, ...]:
    return tuple(_routes)


@dataclass(frozen=True)
class _Template:
    """What Django said on a route besides the entry: its constant headers, and the view
    and route names that its metrics and spans carry."""

    headers: tuple[tuple[str, str], ...]
    view: str
    route: str

    @property
    def span_name(self) -> str:
        return f"GET {self.route}" if self.route else "GET"

    def not_modified_headers(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in self.headers if name.lower() != "content-type"]


class _Pass(Exception):
    """Django answers this request (the reason labels the metric)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Commands:
    """The commands a `PendingCount` queues, collected to go with the read in one write."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def set(self, key: str, value: Any, *, nx: bool = False, ex: int | None = None) -> None:
        command: tuple[Any, ...] = ("SET", key, value)
        if ex is not None:
            command += ("EX", ex)
        self.commands.append((*command, "NX") if nx else command)

    def incr(self, key: str) -> None:
        self.commands.append(("INCR", key))


class _Counters:
    """The metric children of one route's answers, bound once (labels() costs a lookup)."""

    def __init__(self, route: FastRoute, template: _Template, with_requests: bool) -> None:
        self.served = FAST_READS.labels(route.cache_name, "served")
        self.not_modified = FAST_READS.labels(route.cache_name, "not_modified")
        self.hit = CACHE_REQUESTS.labels(route.cache_name, "hit")
        self.latency: Any = None
        self.responses: dict[str, Any] = {}
        if with_requests:
            from django_prometheus.middleware import Metrics

            metrics = Metrics.get_instance()
            view = template.view
            self.latency = metrics.requests_latency_by_view_method.labels(view=view, method="GET")
            self.responses = {
                status: metrics.responses_by_status_view_method.labels(
                    status=status, view=view, method="GET"
                )
                for status in ("200", "304")
            }


class FastReads:
    """The WSGI application wrapped with the fast path for registered routes."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application
        self._templates: dict[tuple[int, bool], tuple[_Template, _Counters]] = {}
        self._sha: str | None = None
        self._local = threading.local()
        self._key_parts: tuple[str, str] | None = None
        self._traced = bool(settings.OTEL_ENABLED)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or "HTTP_AUTHORIZATION" in environ:
            return self.application(environ, start_response)
        path = environ.get("PATH_INFO", "")
        for index, route in enumerate(_routes):
            match = route.path.fullmatch(path)
            if match is not None:
                return self._serve(index, route, match, environ, start_response)
        return self.application(environ, start_response)

    # --- One read --------------------------------------------------------------------------

    def _serve(
        self,
        index: int,
        route: FastRoute,
        match: re.Match[str],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        started, started_ns = time.perf_counter(), time.time_ns()
        request = WSGIRequest(environ)
        try:
            try:
                secure = self._check(request)
                lookup = route.lookup(match, request)
            except SuspiciousOperation:  # a query Django refuses (too many fields): its 400
                raise _Pass("declined") from None
            learned = self._templates.get((index, secure))
            if lookup is None:
                raise _Pass("declined")
            if learned is None:
                return self._learn(index, secure, route, environ, start_response)
            template, counters = learned
            request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id)
            status, headers, body = self._respond(route, counters, template, lookup, request)
        except _Pass as passed:
            FAST_READS.labels(route.cache_name, passed.reason).inc()
            return self.application(environ, start_response)
        headers.append((REQUEST_ID_HEADER, request_id))
        trace_id = self._record_span(template, request, started_ns, status)
        if trace_id is not None:
            headers.append((TRACE_ID_HEADER, trace_id))
        if counters.latency is not None:
            counters.latency.observe(time.perf_counter() - started)
            counters.responses[status[:3]].inc()
        start_response(status, headers)
        return [body]

    def _check(self, request: WSGIRequest) -> bool:
        """Whether the request is secure; raises _Pass when Django must answer it."""
        meta = request.META
        accept = meta.get("HTTP_ACCEPT")
        if accept is not None and not _accepts_json(accept):
            raise _Pass("declined")
        if meta.get("QUERY_STRING") and "format" in request.GET:
            raise _Pass("declined")
        if not caching.ready_for_reads():
            raise _Pass("declined")
        try:
            request.get_host()
        except DisallowedHost:
            raise _Pass("declined") from None
        secure = request.is_secure()
        if settings.SECURE_SSL_REDIRECT and not secure:
            raise _Pass("declined")
        return secure

    def _respond(
        self,
        route: FastRoute,
        counters: _Counters,
        template: _Template,
        lookup: CacheLookup,
        request: WSGIRequest,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        pending = None
        if settings.RATE_LIMIT_ENABLED:
            pending = ratelimit.anonymous_pending_count(request, route.rate_limit_scope)
            if pending is None:
                raise _Pass("declined")
        try:
            entry = self._read(lookup, pending)
        except ratelimit.CACHE_ERRORS:
            raise _Pass("error") from None  # Django meets it again, and bypasses the cache
        if entry is None or entry == caching.ABSENT:
            raise _Pass("miss")
        counters.hit.inc()
        stamped = caching.Stamped.of(entry)
        validators = [("ETag", stamped.etag)]
        if stamped.last_modified is not None:
            validators.append(("Last-Modified", http_date(stamped.last_modified)))
        limits = list((getattr(request, ratelimit.HEADERS_ATTRIBUTE, None) or {}).items())
        if conditional.is_not_modified(request, stamped):
            counters.not_modified.inc()
            headers = [*template.not_modified_headers(), *validators, ("Content-Length", "0")]
            return "304 Not Modified", [*headers, *limits], b""
        counters.served.inc()
        headers = [*template.headers, *validators, ("Content-Length", str(len(stamped.body)))]
        return "200 OK", [*headers, *limits], stamped.body

    def _read(self, lookup: CacheLookup, pending: ratelimit.PendingCount | None) -> bytes | None:
        """The entry, read by the script with the rate limit's counters in the same write;
        raises _Pass("limited") over a limit.

        The commands, packed here, go straight to a connection this thread keeps, made with
        the cache's own connection settings: redis-py's client, its pool and its packer (and
        the tracing of them) cost more than the read. A connection that failed is dropped,
        and the next read makes a new one."""
        if self._sha is None:
            self._prepare()
        if self._key_parts is None:
            return None
        prefix, suffix = self._key_parts
        then = ("", "")
        if lookup.then is not None:
            then = (prefix + lookup.then[0], lookup.then[1] + suffix)
        commands: list[tuple[Any, ...]] = []
        if pending is not None:
            collected = _Commands()
            pending.queue(collected)
            commands = collected.commands
        key = prefix + lookup.key + suffix
        commands.append(("EVALSHA", self._sha, 1, key, *then, lookup.default or ""))
        connection = self._connection()
        try:
            connection.send_packed_command([b"".join(_packed(command) for command in commands)])
            results = [connection.read_response() for _ in commands]
        except NoScriptError:
            self._drop_connection()
            self._sha = None  # Redis restarted empty: load the script again next time
            raise
        except BaseException:
            self._drop_connection()
            raise
        if pending is not None and not pending.within_limits(results[:-1]):
            raise _Pass("limited")
        value: bytes | None = results[-1]
        return value

    def _connection(self) -> Any:
        held = getattr(self._local, "connection", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        from django_redis import get_redis_connection

        pool = get_redis_connection("default").connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        self._local.connection = (os.getpid(), connection)
        return connection

    def _drop_connection(self) -> None:
        held = getattr(self._local, "connection", None)
        self._local.connection = None
        if held is not None and held[0] == os.getpid():
            held[1].disconnect()

    def _prepare(self) -> None:
        from django_redis import get_redis_connection

        made = caching.full_key("\x00").split("\x00")
        self._key_parts = (made[0], made[1]) if len(made) == 2 else None
        self._sha = get_redis_connection("default").script_load(_READ)

    def _record_span(
        self, template: _Template, request: WSGIRequest, started_ns: int, status: str
    ) -> str | None:
        """The answer's server span, from when the request came; returns its trace id."""
        if not self._traced:
            return None
        slow = time.time_ns() - started_ns >= settings.OTEL_SLOW_REQUEST_SECONDS * 1e9
        return record_server_span(
            template.span_name,
            environ=request.META,
            started_ns=started_ns,
            attributes=lambda: {
                "http.method": "GET",
                "http.route": template.route,
                "http.target": request.path,
                "http.scheme": request.scheme or "http",
                "http.status_code": int(status[:3]),
            },
            kept="slow" if slow else None,  # recorded whatever the head sampling says
        )

    # --- Learning a route's headers from Django -------------------------------------------

    def _learn(
        self,
        index: int,
        secure: bool,
        route: FastRoute,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Let Django answer, and keep the headers of its 200 as the route's template."""
        FAST_READS.labels(route.cache_name, "learning").inc()
        path = environ.get("PATH_INFO", "")

        def learning(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            if status.startswith("200 ") and "set-cookie" not in names and "etag" in names:
                template = _template_of(path, headers)
                if template is not None:
                    counters = _Counters(route, template, settings.METRICS_ENABLED)
                    self._templates[(index, secure)] = (template, counters)
            return start_response(status, headers, exc_info)

        return self.application(environ, learning)


def _template_of(path: str, headers: list[tuple[str, str]]) -> _Template | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    kept = tuple((name, value) for name, value in headers if name.lower() not in _PER_REQUEST)
    return _Template(
        headers=kept,
        view=match.view_name or "<unnamed view>",
        route=match.route or "",
    )


def _packed(command: tuple[Any, ...]) -> bytes:
    """`command` in Redis' protocol (RESP): an array of bulk strings."""
    parts = [b"*%d\r\n" % len(command)]
    for argument in command:
        data = argument if isinstance(argument, bytes) else str(argument).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _accepts_json(accept: str) -> bool:
    """Whether DRF's negotiation would pick JSON for this Accept header, judged simply:
    some range without parameters is JSON or a wildcard that covers it."""
    for media_range in accept.split(","):
        media_type, _, params = media_range.partition(";")
        if media_type.strip().lower() in _JSON_RANGES and not params.strip():
            return True
    return False
