"""Rate limits per scope and login lockout, counted in Redis with django-ratelimit.

Every DRF view is limited by `RateLimitThrottle` (REST_FRAMEWORK's default throttle) in
one of four scopes, each with a rate in `RATE_LIMITS`:

- `auth`: login (the API's token view and the admin's login form), registration,
  set-password; counted per client address only. A per-account counter would let anyone
  keep a victim out by naming their email a few times a minute; guessing one account from
  many addresses is bounded by the lockout below and the password rules. Token refresh is
  not in it: a refresh token is a signed one-time credential, nothing to guess, so it
  counts as a write.
- `orders`: order creation, per user.
- `writes`: any other POST/PUT/PATCH/DELETE, per user (per address when anonymous).
- `reads`: GET/HEAD/OPTIONS, per user (per address when anonymous), generous.

A view names its scope with `rate_limit_scope`: a scope for every action, or a dict from
action to scope (`{"create": "orders"}`); anything not named is `reads` or `writes` by
HTTP method. Windows are fixed (django-ratelimit's, with a per-key offset). A refusal is
429 problem+json with `Retry-After`; every limited response carries the IETF draft's
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and
`RateLimit-Policy` headers of the counter nearest to its limit
(draft-ietf-httpapi-ratelimit-headers-06), added by `RateLimitHeadersMiddleware`.

Login lockout (`LoginLockoutMixin` on the token view, `throttled_login` on the admin's
login view), aimed at the attacker, never at the victim: LOGIN_LOCKOUT_ACCOUNT_FAILURES
failed logins for one account *from one address*, or LOGIN_LOCKOUT_IP_FAILURES from one
address on any accounts (the higher ceiling), each less than LOGIN_LOCKOUT_SECONDS after the
previous, lock that (account, address) pair, or that address, out for LOGIN_LOCKOUT_SECONDS
after the last failure: 429 problem+json `login_locked`, even with the right password. The
same account from any other address is not affected, so failures from one address can
never lock its owner out. A successful login clears that pair's failures (not the
address's: an attacker's own account must not reset its guessing budget).

When Redis cannot count (down, or slower than CACHE_SOCKET_TIMEOUT_SECONDS), scopes in
RATE_LIMIT_FAIL_CLOSED_SCOPES (`auth` by default) answer 503 problem+json
`rate_limit_unavailable` with `Retry-After`, and the others are let through unlimited:
- auth fails closed: without counters, password guessing and lockout evasion are free,
  and the cost is small: signed-in customers keep working (refresh is not in `auth`);
- reads, writes and order creation fail open: a Redis outage degrades the shop, it does
  not close it (as /health/ready decides). Orders stay bounded per request
  (ORDER_MAX_LINES, ORDER_MAX_ITEM_QUANTITY), by stock row locks and by authentication;
  what is lost for the outage is the per-user cap on stock held by unpaid orders. Add
  `orders` to RATE_LIMIT_FAIL_CLOSED_SCOPES to trade checkout availability for that.
After a failure, Redis is not tried again for CACHE_BYPASS_SECONDS in this process, so a
hung Redis costs one socket timeout per process, not one per request.

Every refusal (429 and fail-closed 503) counts in `ecommerce_rate_limited_requests_total`
by scope; lockouts count under the scope `login`.

The client address comes from `client_ip`: REMOTE_ADDR, or X-Forwarded-For read through
TRUSTED_PROXY_CIDRS or TRUSTED_PROXY_COUNT, so that a header the client wrote itself is
never believed. Behind a proxy with neither set, every client would share the proxy's
address (and its lockout): start-up refuses BEHIND_PROXY without them (ecommerce/checks.py),
and a request carrying X-Forwarded-For while neither is set logs `forwarded_for_ignored`
once per process.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, get_usage
from django_ratelimit.core import _get_window as get_window
from django_ratelimit.core import _make_cache_key as make_cache_key
from django_ratelimit.core import _split_rate as split_rate
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from ecommerce.observability.logging import get_logger
from ecommerce.observability.metrics import RATE_LIMITED

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

logger = get_logger(__name__)

AUTH = "auth"
ORDERS = "orders"
WRITES = "writes"
READS = "reads"
LOGIN = "login"  # the lockout's label in the RATE_LIMITED metric
# Where the throttle leaves the headers for RateLimitHeadersMiddleware (on the HttpRequest).
HEADERS_ATTRIBUTE = "rate_limit_headers"
# A body field naming the account, besides the user model's USERNAME_FIELD.
ACCOUNT_FIELDS = ("email", "username")
# Errors meaning "the cache did not answer", as opposed to bugs.
CACHE_ERRORS = (RedisError, ConnectionInterrupted, OSError)

# Whether this process already warned about an X-Forwarded-For header it could not believe.
_forwarded_for_warned = False

# Until when (monotonic) Redis is not tried, by cache location: a failure of one Redis
# says nothing about another (tests point the cache at throwaway servers).
_bypass_until: dict[str, float] = {}
_bypass_lock = threading.Lock()


# --- The client address --------------------------------------------------------------------


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header entry (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`), or None."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 has two colons or more
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The address of the client that sent `request`, as far as trusted proxies vouch for it.

    - TRUSTED_PROXY_CIDRS set: when the peer (REMOTE_ADDR) is in them, X-Forwarded-For is
      read from the right, skipping addresses in them; the first one outside is the client.
      A malformed entry stops the walk at the last trusted hop.
    - TRUSTED_PROXY_COUNT = N > 0: the app sits behind exactly N proxies that each append
      to X-Forwarded-For, so the client is the N-th entry from the right. With fewer than N
      entries the request did not come through them all, and the peer is used.
    - Neither: the peer. X-Forwarded-For is ignored.
    Entries a client put in the header itself sit left of what the proxies appended, so
    they are never reached. Returns "" only when REMOTE_ADDR is empty (a Unix socket).
    """
    peer = request.META.get("REMOTE_ADDR", "") or ""
    cidrs = tuple(settings.TRUSTED_PROXY_CIDRS)
    count = settings.TRUSTED_PROXY_COUNT
    if not cidrs and count <= 0:
        if "HTTP_X_FORWARDED_FOR" in request.META:
            _warn_forwarded_for_ignored(peer)
        return peer
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if cidrs:
        networks = _networks(cidrs)
        nearest = _parse_ip(peer)
        if nearest is None or not _trusted(nearest, networks):
            return peer
        for hop in reversed(hops):
            address = _parse_ip(hop)
            if address is None:
                break
            if not _trusted(address, networks):
                return str(address)
            nearest = address
        return str(nearest)
    if len(hops) >= count:
        address = _parse_ip(hops[-count])
        if address is not None:
            return str(address)
    return peer


def _warn_forwarded_for_ignored(peer: str) -> None:
    """Say once per process that a proxy seems to stand in front with no trust configured.

    Either a client wrote the header itself (harmless: it is ignored), or the app runs
    behind a proxy and every client has the proxy's address, sharing one lockout.
    """
    global _forwarded_for_warned
    if _forwarded_for_warned:
        return
    _forwarded_for_warned = True
    logger.warning(
        "forwarded_for_ignored",
        peer=peer,
        hint="Behind a proxy, set TRUSTED_PROXY_CIDRS (or TRUSTED_PROXY_COUNT) and "
        "BEHIND_PROXY=true; otherwise every client shares the proxy's address and lockout.",
    )


def _address_key(address: str) -> str:
    """The counter key of an address: IPv6 clients get a /64 each, as ISPs hand them out."""
    parsed = _parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address) + "/64"
    return str(parsed) if parsed is not None else (address or "unknown")


# --- Counting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """One counter after this request: its limit, what is left, and when it resets."""

    limit: int
    count: int
    window_seconds: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }


class CacheUnavailable(Exception):
    """The counters' cache did not answer."""


class RateLimited(Throttled):
    """429: a counter of `scope` is over its limit."""

    default_code = "rate_limited"

    def __init__(self, *, scope: str, usage: Usage) -> None:
        self.scope = scope
        super().__init__(
            wait=max(1, usage.reset_seconds),
            detail=(
                f"Too many requests: the {scope} limit is {usage.limit} per "
                f"{usage.window_seconds} seconds."
            ),
        )


class LoginLocked(Throttled):
    """429: too many failed logins for this account or from this address."""

    default_code = "login_locked"

    def __init__(self, *, wait_seconds: int) -> None:
        super().__init__(
            wait=wait_seconds,
            detail="Too many failed logins for this account or from this address.",
        )


class RateLimitUnavailable(APIException):
    """503: the limiter cannot count and this scope fails closed."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "rate_limit_unavailable"
    default_detail = "Rate limiting is unavailable, so this request cannot be accepted now."

    def __init__(self, *, scope: str) -> None:
        self.scope = scope
        self.wait = max(1, math.ceil(settings.CACHE_BYPASS_SECONDS))
        super().__init__(
            f"Rate limiting is unavailable, so {scope} requests are refused for now. "
            f"Try again in {self.wait} seconds."
        )


def _cache_location() -> str:
    return str(settings.CACHES["default"].get("LOCATION", ""))


def _bypassing() -> bool:
    return time.monotonic() < _bypass_until.get(_cache_location(), 0.0)


def _cache_failed(exc: BaseException) -> None:
    with _bypass_lock:
        first = not _bypassing()
        _bypass_until[_cache_location()] = time.monotonic() + settings.CACHE_BYPASS_SECONDS
    if first:
        logger.warning(
            "rate_limit_cache_unavailable",
            error=f"{type(exc).__name__}: {exc}"[:200],
            bypass_seconds=settings.CACHE_BYPASS_SECONDS,
            fail_closed_scopes=list(settings.RATE_LIMIT_FAIL_CLOSED_SCOPES),
        )


def reset_bypass() -> None:
    """Forget previous cache failures (tests, and after an operator fixed Redis)."""
    _bypass_until.clear()


def _guarded(call: Callable[[], Any]) -> Any:
    """Run a cache operation; raise CacheUnavailable when the cache fails or is bypassed."""
    if _bypassing():
        raise CacheUnavailable
    try:
        return call()
    except CACHE_ERRORS as exc:
        _cache_failed(exc)
        raise CacheUnavailable from exc


def _uses_redis() -> bool:
    return bool(settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache")


@dataclass(frozen=True)
class _Counter:
    """One django-ratelimit counter in Redis: its key, window and limit for this request."""

    key: str
    limit: int
    window: int
    window_end: int

    @classmethod
    def of(cls, *, group: str, value: str, rate: str) -> _Counter:
        limit, window = _split_rate(rate)
        window_end = get_window(value, window)
        key = cache.make_key(make_cache_key(group, window_end, rate, value, ALL))
        return cls(key=key, limit=limit, window=window, window_end=window_end)

    def queue(self, pipe: Any) -> None:
        """Two commands: create the counter with its expiry when new, then count."""
        pipe.set(self.key, 0, nx=True, ex=self.window + EXPIRATION_FUDGE)
        pipe.incr(self.key)

    def usage(self, count: Any) -> Usage:
        return Usage(
            limit=self.limit,
            count=int(count),
            window_seconds=self.window,
            reset_seconds=max(0, self.window_end - int(time.time())),
        )


def _count_in_redis(*, group: str, value: str, rate: str) -> Usage:
    """django-ratelimit's counter (same key, window and expiry) in one round trip.

    get_usage takes two (SET NX, then an EVAL'd INCR): about 160 us of CPU per counter
    here, against about 75 us for this pipeline, on every API request.
    """
    counter = _Counter.of(group=group, value=value, rate=rate)
    pipe = get_redis_connection("default").pipeline(transaction=False)
    counter.queue(pipe)
    _, count = pipe.execute()
    return counter.usage(count)


def _count(request: HttpRequest, *, group: str, value: str, rate: str) -> Usage:
    """Count this request on one fixed-window counter (django-ratelimit's)."""
    if _uses_redis():
        usage: Usage = _guarded(lambda: _count_in_redis(group=group, value=value, rate=rate))
        return usage
    counted = _guarded(
        lambda: get_usage(
            request, group=group, key=lambda _group, _request: value, rate=rate, increment=True
        )
    )
    if counted["time_left"] < 0:  # django-ratelimit's way to say the cache returned nothing
        _cache_failed(RuntimeError("the rate limit counter could not be read"))
        raise CacheUnavailable
    limit, window = _split_rate(rate)
    return Usage(
        limit=limit,
        count=int(counted["count"]),
        window_seconds=window,
        reset_seconds=max(0, int(counted["time_left"])),
    )


def _split_rate(rate: str) -> tuple[int, int]:
    count, seconds = split_rate(rate)
    return int(count), int(seconds)


# --- Scopes and the throttle ---------------------------------------------------------------


def scope_of(view: Any, method: str) -> str:
    """The scope of a request to `view`: what the view declares, else reads or writes."""
    declared = getattr(view, "rate_limit_scope", None)
    if isinstance(declared, dict):
        declared = declared.get(getattr(view, "action", None))
    if declared:
        return str(declared)
    return READS if method in SAFE_METHODS else WRITES


def account_of(data: Any) -> str | None:
    """The account a body names (its email or username), normalised; None when none."""
    if not hasattr(data, "get"):
        return None
    for field in (get_user_model().USERNAME_FIELD, *ACCOUNT_FIELDS):
        value = data.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def _digest(value: str) -> str:
    # Keys never hold an email in clear (Redis dumps, MONITOR).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def counter_keys(scope: str, request: Request) -> list[tuple[str, str]]:
    """The (kind, value) pairs `request` is counted under in `scope`."""
    user = request.user
    if scope != AUTH and user is not None and user.is_authenticated:
        return [("user", str(user.pk))]
    return address_counter_keys(request._request)


def address_counter_keys(request: HttpRequest) -> list[tuple[str, str]]:
    """What an anonymous request is counted under, in any scope: its client's address."""
    return [("ip", _address_key(client_ip(request)))]


def anonymous_pending_count(request: HttpRequest, scope: str) -> PendingCount | None:
    """The count of an anonymous request in `scope`, to send with a cache read of one's own
    (ecommerce.api.fastpath), as the throttle leaves it for a piggybacking view. None when
    that cannot be: counting goes to a cache that is not Redis, or Redis failed just now
    (the throttle counts alone then, and fails open or closed)."""
    if not _uses_redis() or _bypassing():
        return None
    return PendingCount(request, scope, address_counter_keys(request))


def _refuse(scope: str, exc: APIException) -> NoReturn:
    RATE_LIMITED.labels(scope=scope).inc()
    logger.info(
        "rate_limited",
        scope=scope,
        code=exc.get_codes(),
        status=exc.status_code,
        wait_seconds=getattr(exc, "wait", None),
    )
    raise exc


def _judge(request: HttpRequest, scope: str, usages: list[Usage]) -> None:
    """Leave the headers of the counter nearest its limit; refuse when one is over it."""
    exceeded = [usage for usage in usages if usage.exceeded]
    shown = (
        max(exceeded, key=lambda u: u.reset_seconds)
        if exceeded
        else min(usages, key=lambda u: (u.remaining, -u.reset_seconds))
    )
    setattr(request, HEADERS_ATTRIBUTE, shown.headers())
    if exceeded:
        _refuse(scope, RateLimited(scope=scope, usage=shown))


def _count_all(request: HttpRequest, scope: str, counters: list[tuple[str, str]]) -> None:
    """Count the request on each counter now; refuse (429, or 503 when failing closed)."""
    rate = settings.RATE_LIMITS[scope]
    try:
        usages = [
            _count(request, group=f"{scope}:{kind}", value=value, rate=rate)
            for kind, value in counters
        ]
    except CacheUnavailable:
        if scope in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES:
            _refuse(scope, RateLimitUnavailable(scope=scope))
        return
    _judge(request, scope, usages)


class PendingCount:
    """A count the throttle left for the view to send with its own cache read.

    A view that declares `rate_limit_piggyback = True` reads its answer from Redis anyway:
    `queue` adds the counters' commands to that read's pipeline (one round trip for both)
    and `settle` judges the results before anything is computed, raising RateLimited as
    the throttle would have. `settle_pending` (from `PiggybackRateLimitMixin`, once the
    view is done) counts whatever was not settled so, alone: nothing escapes counting.
    """

    def __init__(self, request: HttpRequest, scope: str, counters: list[tuple[str, str]]) -> None:
        self.request = request
        self.scope = scope
        self.counters = counters
        self.settled = False
        rate = settings.RATE_LIMITS[scope]
        self._redis = [
            _Counter.of(group=f"{scope}:{kind}", value=value, rate=rate) for kind, value in counters
        ]

    def queue(self, pipe: Any) -> int:
        """Add the counting commands to `pipe`; returns how many results they take."""
        for counter in self._redis:
            counter.queue(pipe)
        return 2 * len(self._redis)

    def settle(self, results: list[Any]) -> None:
        """Judge the results of `queue`'s commands (raises RateLimited over a limit)."""
        self.settled = True
        _judge(self.request, self.scope, self._usages(results))

    def within_limits(self, results: list[Any]) -> bool:
        """Whether the results of `queue`'s commands are all under their limits, leaving
        the RateLimit-* headers on the request when they are. Over a limit nothing is
        refused or recorded: the caller lets the throttle count and refuse it."""
        usages = self._usages(results)
        if any(usage.exceeded for usage in usages):
            return False
        _judge(self.request, self.scope, usages)
        return True

    def _usages(self, results: list[Any]) -> list[Usage]:
        counts = results[1::2]
        return [counter.usage(count) for counter, count in zip(self._redis, counts, strict=True)]


PENDING_ATTRIBUTE = "rate_limit_pending"


def pending_count(request: Request | HttpRequest) -> PendingCount | None:
    """The count the throttle left to send with this request's cache read, if any."""
    django_request = getattr(request, "_request", request)
    pending: PendingCount | None = getattr(django_request, PENDING_ATTRIBUTE, None)
    return pending if pending is not None and not pending.settled else None


def settle_pending(request: Request | HttpRequest) -> None:
    """Count, alone, what the view's cache read did not carry (no read, a cache failure)."""
    pending = pending_count(request)
    if pending is not None:
        pending.settled = True
        _count_all(pending.request, pending.scope, pending.counters)


class RateLimitThrottle(BaseThrottle):
    """DRF's default throttle: counts the request in its scope, refuses over the limit.

    Raises RateLimited (429) or RateLimitUnavailable (503, fail-closed scopes only);
    leaves the RateLimit-* headers on the request for RateLimitHeadersMiddleware. For a
    view with `rate_limit_piggyback` (safe methods only) it leaves a `PendingCount`
    instead, sent with the view's cache read.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not settings.RATE_LIMIT_ENABLED:
            return True
        scope = scope_of(view, request.method or "GET")
        counters = counter_keys(scope, request)
        if (
            getattr(view, "rate_limit_piggyback", False)
            and request.method in SAFE_METHODS
            and _uses_redis()
            and not _bypassing()
        ):
            setattr(
                request._request, PENDING_ATTRIBUTE, PendingCount(request._request, scope, counters)
            )
            return True
        _count_all(request._request, scope, counters)
        return True


class PiggybackRateLimitMixin:
    """For a view with `rate_limit_piggyback`: whatever its handler did, the request is
    counted before the response leaves (a refusal replaces the response)."""

    rate_limit_piggyback = True

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        try:
            settle_pending(request)
        except APIException as exc:
            response = self.handle_exception(exc)  # type: ignore[attr-defined]
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class RateLimitHeadersMiddleware:
    """Copy the RateLimit-* headers the throttle computed onto the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        headers: dict[str, str] | None = getattr(request, HEADERS_ATTRIBUTE, None)
        if headers:
            for name, value in headers.items():
                response.headers.setdefault(name, value)
        return response


# --- Login lockout -------------------------------------------------------------------------


def _lockout_counters(request: HttpRequest, account: str | None) -> list[tuple[str, int]]:
    """(cache key, failures that lock) for the address and, when one is named, the pair of
    the account and the address."""
    address = _address_key(client_ip(request))
    counters = [(f"login-failures:ip:{address}", settings.LOGIN_LOCKOUT_IP_FAILURES)]
    if account:
        counters.append(
            (
                f"login-failures:account-ip:{_digest(f'{account}|{address}')}",
                settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES,
            )
        )
    return counters


def _seconds_left(key: str) -> int:
    ttl = getattr(cache, "ttl", None)  # django-redis has it; the local-memory cache does not
    left = ttl(key) if ttl is not None else None
    return int(left) if isinstance(left, int) and left > 0 else settings.LOGIN_LOCKOUT_SECONDS


def check_login_allowed(request: HttpRequest, account: str | None) -> None:
    """Refuse a login while its address, or its account from this address, is locked out.

    Raises LoginLocked (429), or RateLimitUnavailable (503) when the counters cannot be
    read and the auth scope fails closed.
    """
    counters = _lockout_counters(request, account)

    def locked_for() -> int:
        failures = cache.get_many([key for key, _ in counters])
        locked = [key for key, limit in counters if int(failures.get(key) or 0) >= limit]
        return max((_seconds_left(key) for key in locked), default=0)

    try:
        wait = _guarded(locked_for)
    except CacheUnavailable:
        if AUTH in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES:
            _refuse(AUTH, RateLimitUnavailable(scope=AUTH))
        return
    if wait:
        _refuse(LOGIN, LoginLocked(wait_seconds=wait))


def record_login_failure(request: HttpRequest, account: str | None) -> None:
    """Count a failed login against its address and its (account, address) pair; each
    failure restarts the LOGIN_LOCKOUT_SECONDS period. A cache failure is logged, not raised."""
    seconds = settings.LOGIN_LOCKOUT_SECONDS

    def record() -> None:
        for key, _limit in _lockout_counters(request, account):
            if not cache.add(key, 1, timeout=seconds):
                cache.incr(key)
                cache.touch(key, timeout=seconds)

    try:
        _guarded(record)
    except CacheUnavailable:
        logger.warning("login_failure_not_counted")


def clear_login_failures(request: HttpRequest, account: str | None) -> None:
    """Forget the failures of the account that just logged in from this address (not the
    address's own count)."""
    if not account:
        return
    key = _lockout_counters(request, account)[-1][0]
    try:
        _guarded(lambda: cache.delete(key))
    except CacheUnavailable:
        logger.warning("login_failures_not_cleared")


class LoginLockoutMixin:
    """For a SimpleJWT token view: refuse locked-out logins, count failures, clear on success."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = account_of(request.data)
        if settings.RATE_LIMIT_ENABLED:
            check_login_allowed(request._request, account)
        try:
            response: Response = super().post(request, *args, **kwargs)  # type: ignore[misc]
        except AuthenticationFailed:
            if settings.RATE_LIMIT_ENABLED:
                record_login_failure(request._request, account)
            raise
        if settings.RATE_LIMIT_ENABLED:
            clear_login_failures(request._request, account)
        return response


# --- The admin's login form ----------------------------------------------------------------


def _refusal_response(request: HttpRequest, exc: APIException) -> HttpResponse:
    """problem+json for a refusal raised outside DRF (the admin's login view)."""
    # Imported here: ecommerce.api.exceptions imports DRF's views, which import this module
    # (DEFAULT_THROTTLE_CLASSES) while it loads.
    from ecommerce.api.exceptions import PROBLEM_CONTENT_TYPE, problem_body

    codes = exc.get_codes()
    body = problem_body(
        request,
        exc.status_code,
        code=codes if isinstance(codes, str) else None,
        detail=str(exc.detail),
    )
    response = HttpResponse(
        json.dumps(body), status=exc.status_code, content_type=PROBLEM_CONTENT_TYPE
    )
    wait = getattr(exc, "wait", None)
    if wait:
        response["Retry-After"] = str(math.ceil(wait))
    return response


def _admin_login_guard(request: HttpRequest, account: str | None) -> None:
    """The checks the token view gets from RateLimitThrottle and LoginLockoutMixin: the auth
    scope's per-address counter (shared with the API, so one budget per address), then the
    lockout. Raises the same refusals."""
    address = _address_key(client_ip(request))
    try:
        usage = _count(request, group=f"{AUTH}:ip", value=address, rate=settings.RATE_LIMITS[AUTH])
    except CacheUnavailable:
        if AUTH in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES:
            _refuse(AUTH, RateLimitUnavailable(scope=AUTH))
    else:
        if usage.exceeded:
            _refuse(AUTH, RateLimited(scope=AUTH, usage=usage))
    check_login_allowed(request, account)


def throttled_login(
    login_view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Wrap the admin's login view with the token view's rate limit and lockout.

    Without it `/admin/login/` allowed unlimited password guesses against the most
    privileged accounts. A POST that does not leave the user signed in (the form shown
    again, for a wrong password or a non-staff account) counts as a failed login of the
    account named in `username`.
    """

    @functools.wraps(login_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST" or not settings.RATE_LIMIT_ENABLED:
            return login_view(request, *args, **kwargs)
        account = account_of(request.POST)
        try:
            _admin_login_guard(request, account)
        except (RateLimited, LoginLocked, RateLimitUnavailable) as exc:
            return _refusal_response(request, exc)
        response = login_view(request, *args, **kwargs)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            clear_login_failures(request, account)
        else:
            record_login_failure(request, account)
        return response

    return view
