"""Project settings, read from the environment; `.env.example` documents every variable.

With no environment at all the project runs embedded (SQLite, local-memory cache, Celery
tasks run eagerly, DEBUG on). `DATABASE_URL`, `REDIS_URL` and `CELERY_BROKER_URL` switch to
PostgreSQL, Redis and real workers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from kombu import Exchange, Queue

from ecommerce.brokers import is_rabbitmq_url
from ecommerce.checks import StartupSettings
from ecommerce.checks import refusals as startup_refusals
from ecommerce.observability.logging import build_logging_config, configure_structlog

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and (BASE_DIR / ".env").is_file():
    # Values already in the environment win over the file.
    env.read_env(BASE_DIR / ".env")

EMBEDDED = not env.str("DATABASE_URL", default="")
DEBUG = env.bool("DEBUG", default=EMBEDDED)


def _required_outside_debug(name: str) -> None:
    if not DEBUG and not env.str(name, default=""):
        # One clear line, not a traceback: this is an operator's mistake, not a bug.
        sys.exit(f"ImproperlyConfigured: {name} must be set when DEBUG is off (see .env.example).")


# --- Core -------------------------------------------------------------------------------
_required_outside_debug("SECRET_KEY")
_required_outside_debug("ALLOWED_HOSTS")
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-embedded-mode-only")
# Previous keys, still accepted for signatures while a rotation settles.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# On Kubernetes the pod's own IP (downward API), so Prometheus can scrape it by address.
if env.str("POD_IP", default=""):
    ALLOWED_HOSTS.append(env.str("POD_IP"))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "apps.users",
    "apps.catalog",
    "apps.shipping",
    "apps.pricing",
    "apps.inventory",
    "apps.orders",
    "apps.payments",
    "apps.checkout",
    "apps.notifications",
    "apps.audit",
    "ecommerce.outbox",
    "ecommerce.invariants",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and ReDoc builds, pinned with the package and served as static files.
    "drf_spectacular_sidecar",
    "ecommerce.resilience",
]

# Request latency and SQL metrics (/metrics): off only where nothing scrapes them, or to
# measure what they cost (bench/run.py). The application's own counters stay either way.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
# Warm public catalog reads answered from the cache before Django's handler, with the
# headers Django gave the same route (ecommerce/api/fastpath.py). Off: Django answers all.
FAST_READS_ENABLED = env.bool("FAST_READS_ENABLED", default=True)
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=True)
MIDDLEWARE = [
    # Outermost: the request's server span covers everything else (ecommerce/observability).
    *(["ecommerce.observability.middleware.TracingMiddleware"] if OTEL_ENABLED else []),
    # Outermost, both: they see the final response, problem+json rewrites included, so
    # 404/405/500 problems carry HSTS, nosniff, Referrer-Policy and the CSP too.
    "django.middleware.security.SecurityMiddleware",
    "ecommerce.security.ContentSecurityPolicyMiddleware",
    "ecommerce.api.middleware.RequestIdMiddleware",
    *(["ecommerce.observability.middleware.MetricsMiddleware"] if METRICS_ENABLED else []),
    "ecommerce.api.middleware.ProblemDetailsMiddleware",
    "ecommerce.api.ratelimit.RateLimitHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session stack, each skipped for the JWT API, probes and metrics
    # (ecommerce/middleware.py: SESSIONLESS_PATH_PREFIXES); the admin gets it whole.
    # CSRF and X-Frame-Options stay Django's own, for every path: they cost a cookie
    # lookup and a header, DRF's views are csrf-exempt, and `check --deploy` asks for them.
    "ecommerce.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "ecommerce.middleware.AdminAuthenticationMiddleware",
    # Who changed what (ecommerce/audit.py): the user is read lazily, when a change is
    # reported, so from DRF's token user in the API and the session user in the admin.
    "ecommerce.audit.AuditActorMiddleware",
    "ecommerce.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Paths the admin-only middleware passes by (ecommerce/middleware.py).
SESSIONLESS_PATH_PREFIXES = ("/api/", "/health", "/metrics", "/traces")
# HTML pages under those prefixes keep the whole stack.
SESSIONLESS_PATH_EXCEPTIONS = ("/api/docs", "/api/redoc")

ROOT_URLCONF = "ecommerce.urls"
WSGI_APPLICATION = "ecommerce.wsgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# --- Media (uploaded product images; apps/catalog/media.py) ------------------------------
# Files go through Django's storage API: the local filesystem under MEDIA_ROOT by default,
# or any django-storages backend (`storages.backends.s3.S3Storage`, ...) named by
# MEDIA_STORAGE_BACKEND, configured by MEDIA_STORAGE_OPTIONS (JSON: the backend's options).
MEDIA_STORAGE_BACKEND = env.str(
    "MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
)
MEDIA_STORAGE_OPTIONS = env.json("MEDIA_STORAGE_OPTIONS", default={})
# Relative to the project directory unless absolute; web and workers must share it.
MEDIA_ROOT = BASE_DIR / env.str("MEDIA_ROOT", default="var/media")
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
# With the local filesystem backend the app serves MEDIA_URL itself (ecommerce/media.py);
# turn it off when a web server or CDN in front serves MEDIA_ROOT.
MEDIA_SERVE_LOCAL = env.bool("MEDIA_SERVE_LOCAL", default=True)
# One upload's bytes, counted while it is received; and its pixels (width x height), read
# from the header before any decoding, so a small file cannot unpack into gigabytes.
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=10 * 1024 * 1024)
MEDIA_MAX_PIXELS = env.int("MEDIA_MAX_PIXELS", default=40_000_000)
# Thumbnails (longest side, in pixels) made for every image: fixed, since payloads and
# clients name them.
THUMBNAIL_SIZES = (160, 480, 960)
STORAGES = {
    "default": {"BACKEND": MEDIA_STORAGE_BACKEND, "OPTIONS": MEDIA_STORAGE_OPTIONS},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Database ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE_SECONDS", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction mode a named cursor would outlive its server connection.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
)
# The order and checkout paths' statements are prepared once per connection
# (ecommerce/db/prepared.py); behind PgBouncer in transaction mode they must not be.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # libpq's floor is 2 s; a request that finds PostgreSQL unreachable fails that fast.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT_SECONDS", default=2
    )
    # Web processes get half of GUNICORN_TIMEOUT_SECONDS (ecommerce/gunicorn.conf.py), so a
    # statement stuck on a row lock gives up, and its request answers 503, before gunicorn
    # kills the worker; 0 (workers, commands, migrations) leaves statements unlimited. Sent
    # at connect (libpq `options`), which PgBouncer does not pass on: behind it, set it on the
    # database role (docs/capacity.md).
    _statement_timeout_ms = round(env.float("DATABASE_STATEMENT_TIMEOUT_SECONDS", default=0) * 1000)
    _options = DATABASES["default"]["OPTIONS"]
    # libpq reads PGOPTIONS only when no `options` is given: keep it, ours come after.
    _options.setdefault("options", os.environ.get("PGOPTIONS", ""))
    if _statement_timeout_ms > 0:
        _options["options"] = (
            f"{_options.get('options', '')} -c statement_timeout={_statement_timeout_ms}".strip()
        )
    # JIT compilation costs 80-300 ms on the catalog's list and facet statements and saves
    # nothing on short OLTP queries: off unless asked for.
    if not env.bool("DATABASE_JIT", default=False):
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
    # The same backend, counting queries, errors and connections for /metrics.
    if METRICS_ENABLED:
        DATABASES["default"]["ENGINE"] = "ecommerce.db.backends.postgresql"
# A request the database could not serve is a 503 problem+json with this Retry-After.
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int(
    "DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5
)
# An optional streaming replica for the reads that opt in (ecommerce/db/router.py); unset,
# every query goes to DATABASE_URL. Same options and backend as the primary; tests mirror
# the primary instead of creating a test database on a read-only server.
if env.str("DATABASE_REPLICA_URL", default=""):
    _replica = env.db("DATABASE_REPLICA_URL")
    if not (
        _replica["ENGINE"].endswith("postgresql")
        and DATABASES["default"]["ENGINE"].endswith("postgresql")
    ):
        sys.exit("ImproperlyConfigured: DATABASE_REPLICA_URL needs PostgreSQL, as DATABASE_URL.")
    for _key in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "DISABLE_SERVER_SIDE_CURSORS"):
        _replica[_key] = DATABASES["default"][_key]
    _replica["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **_replica.get("OPTIONS", {})}
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["ecommerce.db.router.PrimaryReplicaRouter"]
# Seconds an unreachable replica is skipped (its reads go to the primary) before a retry.
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=30.0)

# --- Cache (and, later, locks, breaker state and rate limits) -----------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Outside DEBUG an unset REDIS_URL stops start-up unless this says per-process state is meant.
ALLOW_LOCAL_STATE = env.bool("ALLOW_LOCAL_STATE", default=False)
CACHE_SOCKET_TIMEOUT_SECONDS = env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ecommerce"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": CACHE_SOCKET_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": CACHE_SOCKET_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Read-through caching (ecommerce/caching.py).
CACHE_BYPASS_SECONDS = env.float("CACHE_BYPASS_SECONDS", default=2.0)
CACHE_FILL_LOCK_SECONDS = env.float("CACHE_FILL_LOCK_SECONDS", default=2.0)
CACHE_FILL_POLL_SECONDS = env.float("CACHE_FILL_POLL_SECONDS", default=0.01)
CACHE_ABSENT_TTL_SECONDS = env.int("CACHE_ABSENT_TTL_SECONDS", default=10)
CACHE_GENERATION_TTL_SECONDS = env.int("CACHE_GENERATION_TTL_SECONDS", default=7 * 86400)

# --- Catalog ----------------------------------------------------------------------------
STORE_CURRENCY = env.str("STORE_CURRENCY", default="EUR").upper()
CATALOG_CACHE_TTL_SECONDS = env.int("CATALOG_CACHE_TTL_SECONDS", default=300)
# Cache-Control max-age of public catalog reads (ecommerce/api/conditional.py): how long a
# browser or shared cache may reuse one before revalidating it (a 304 when unchanged).
PUBLIC_READ_MAX_AGE_SECONDS = env.int("PUBLIC_READ_MAX_AGE_SECONDS", default=30)
# The PostgreSQL text search configuration product search stems words with (one built in,
# so a typo stops start-up instead of failing every search). Changing it on a live
# database needs apps.catalog.search.rebuild_search_documents().
SEARCH_LANGUAGE = env.str("SEARCH_LANGUAGE", default="english").lower()
_SEARCH_LANGUAGES = (
    *("simple", "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english"),
    *("finnish", "french", "german", "greek", "hindi", "hungarian", "indonesian", "irish"),
    *("italian", "lithuanian", "nepali", "norwegian", "portuguese", "romanian", "russian"),
    *("serbian", "spanish", "swedish", "tamil", "turkish", "yiddish"),
)
if SEARCH_LANGUAGE not in _SEARCH_LANGUAGES:
    sys.exit(
        f"ImproperlyConfigured: SEARCH_LANGUAGE={SEARCH_LANGUAGE!r} is not one of: "
        f"{', '.join(_SEARCH_LANGUAGES)}."
    )

# --- Orders -----------------------------------------------------------------------------
ORDER_MAX_LINES = env.int("ORDER_MAX_LINES", default=50)
ORDER_MAX_ITEM_QUANTITY = env.int("ORDER_MAX_ITEM_QUANTITY", default=100)
ORDER_PAYMENT_TIMEOUT_SECONDS = env.int("ORDER_PAYMENT_TIMEOUT_SECONDS", default=900)
ORDER_EXPIRY_BATCH_SIZE = env.int("ORDER_EXPIRY_BATCH_SIZE", default=200)
# How long a checkout holds its stock and voucher use for the payment (the order's
# expires_at); unpaid by then, the order expires and both come back once.
CHECKOUT_HOLD_SECONDS = env.int("CHECKOUT_HOLD_SECONDS", default=ORDER_PAYMENT_TIMEOUT_SECONDS)
# A cart with no change for this long is gone (404) and deleted by the beat task.
CART_IDLE_SECONDS = env.int("CART_IDLE_SECONDS", default=30 * 24 * 3600)
# Different variants per cart: a cart becomes one order, so never more than an order holds.
CART_MAX_LINES = min(env.int("CART_MAX_LINES", default=ORDER_MAX_LINES), ORDER_MAX_LINES)
CART_EXPIRY_BATCH_SIZE = env.int("CART_EXPIRY_BATCH_SIZE", default=1000)
PAYMENT_LOCK_TTL_SECONDS = env.int("PAYMENT_LOCK_TTL_SECONDS", default=60)
PAYMENT_RECONCILE_AFTER_SECONDS = env.int("PAYMENT_RECONCILE_AFTER_SECONDS", default=300)
PAYMENT_RECONCILE_BATCH_SIZE = env.int("PAYMENT_RECONCILE_BATCH_SIZE", default=100)
# A payment never attempted, or an order whose payment was never opened, this long after
# the order was placed (its order.placed message was lost) is opened and charged by the
# reconcile sweep, after asking the provider by its key.
PAYMENT_UNATTEMPTED_AFTER_SECONDS = env.int("PAYMENT_UNATTEMPTED_AFTER_SECONDS", default=60)
# Calls to the provider one payment may make, across task retries and sweeps; then the
# order fails (payment_failed, stock back). Refusals by the open breaker do not count.
PAYMENT_MAX_ATTEMPTS_PER_PAYMENT = env.int("PAYMENT_MAX_ATTEMPTS_PER_PAYMENT", default=10)
# One sweep (reconcile or expiry) stops starting provider calls after this long; the rest
# waits for the next run, so a slow provider cannot push a run past its time limit.
PAYMENT_SWEEP_BUDGET_SECONDS = env.float("PAYMENT_SWEEP_BUDGET_SECONDS", default=120.0)
# The outbox (docs/operations.md, "Delivery guarantees"): a row not completed by its task
# when its lease runs out is re-sent by the relay. Longer than a task's wait in its queue
# plus its hard time limit, or a healthy run is sent twice (absorbed: handlers are
# idempotent, but wasted). Each further re-send of one row doubles its lease, up to the max.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
OUTBOX_LEASE_MAX_SECONDS = env.int("OUTBOX_LEASE_MAX_SECONDS", default=3600)
# A retry waiting longer than this is not kept in the broker as an ETA message: the row's
# lease holds it and the relay re-sends it when due. Well below the visibility timeout.
OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS = env.int("OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS", default=60)
# After the broker failed a hand-off, web processes leave new rows to the relay for this
# long instead of each request waiting out the broker's socket timeout again.
OUTBOX_HANDOFF_PAUSE_SECONDS = env.float("OUTBOX_HANDOFF_PAUSE_SECONDS", default=5.0)
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=100)
# check_invariants: how long past its deadline work may still be in flight, not broken.
INVARIANTS_GRACE_SECONDS = env.float("INVARIANTS_GRACE_SECONDS", default=600.0)

# --- Payments ---------------------------------------------------------------------------
# The provider's base URL (the sandbox process: `manage.py run_payment_sandbox`); empty
# calls the sandbox in-process (embedded mode).
PAYMENT_PROVIDER_URL = env.str("PAYMENT_PROVIDER_URL", default="")
# Outside DEBUG an unset PAYMENT_PROVIDER_URL stops start-up unless this says the in-process
# sandbox (no money moves) is meant.
ALLOW_IN_PROCESS_PAYMENT_SANDBOX = env.bool("ALLOW_IN_PROCESS_PAYMENT_SANDBOX", default=False)
PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS = env.float(
    "PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS", default=1.0
)
PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = env.float(
    "PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS", default=5.0
)
PAYMENT_SANDBOX_SUCCESS_TOKEN = env.str("PAYMENT_SANDBOX_SUCCESS_TOKEN", default="tok_success")
# The in-process sandbox keeps its charges in this SQLite file, shared by every local process
# (gunicorn's workers, commands), so a refund finds a charge another worker made;
# ":memory:" keeps them per process.
PAYMENT_SANDBOX_DB = env.str("PAYMENT_SANDBOX_DB", default="var/payment-sandbox.sqlite3")
if PAYMENT_SANDBOX_DB != ":memory:":
    PAYMENT_SANDBOX_DB = str(BASE_DIR / PAYMENT_SANDBOX_DB)
# Provider webhooks in (apps/payments/webhooks.py): the secret shared with the provider
# (unset: every delivery is refused, 400), and how far a signed timestamp may lie from now.
PAYMENT_WEBHOOK_SECRET = env.str("PAYMENT_WEBHOOK_SECRET", default="")
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# When the money is taken (docs/payment-capture.md): "immediate" charges
# the card when the order is placed; "fulfilment" only authorizes it then (the order is
# `authorized`, the amount held on the card) and captures what ships when staff fulfil it.
PAYMENT_CAPTURE_MODE = env.str("PAYMENT_CAPTURE_MODE", default="immediate").strip().lower()
if PAYMENT_CAPTURE_MODE not in ("immediate", "fulfilment"):
    sys.exit(
        f"ImproperlyConfigured: PAYMENT_CAPTURE_MODE={PAYMENT_CAPTURE_MODE!r} is not one of: "
        "immediate, fulfilment."
    )
# An authorized order not fulfilled this long after it was authorized expires: its
# authorization is voided and its stock comes back, before the provider's own limit
# (7 days at Stripe and the sandbox) would refuse the capture.
PAYMENT_AUTHORIZATION_TTL_SECONDS = env.int(
    "PAYMENT_AUTHORIZATION_TTL_SECONDS", default=6 * 24 * 3600
)
# Embedded mode: where the in-process sandbox's redirect pages (a charge waiting for the
# customer's action) are served, this app's `/_sandbox` mount.
PAYMENT_SANDBOX_ACTION_BASE_URL = env.str(
    "PAYMENT_SANDBOX_ACTION_BASE_URL", default="http://localhost:8080/_sandbox"
)

# --- Email and notifications (apps/notifications/) ----------------------------------------
# consolemail:// prints mails (dev); smtp://user:pass@host:587 or smtp+tls://... sends them.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = EMAIL_CONFIG["EMAIL_BACKEND"]
EMAIL_HOST = EMAIL_CONFIG.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = EMAIL_CONFIG.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = EMAIL_CONFIG.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = EMAIL_CONFIG.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(EMAIL_CONFIG.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(EMAIL_CONFIG.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Shop <no-reply@localhost>")
# Where the customer-facing site lives; links in emails point there.
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:8080").rstrip("/")
SET_PASSWORD_URL = env.str("SET_PASSWORD_URL", default=f"{FRONTEND_URL}/set-password")
# How long a set-password link (Django's reset token) stays valid.
PASSWORD_RESET_TIMEOUT = env.int("SET_PASSWORD_TOKEN_TIMEOUT_SECONDS", default=3 * 86400)
NOTIFICATION_EMAIL_MAX_ATTEMPTS = env.int("NOTIFICATION_EMAIL_MAX_ATTEMPTS", default=5)
NOTIFICATION_RETRY_BASE_SECONDS = env.float("NOTIFICATION_RETRY_BASE_SECONDS", default=5.0)
NOTIFICATION_RETRY_CAP_SECONDS = env.float("NOTIFICATION_RETRY_CAP_SECONDS", default=900.0)
NOTIFICATION_LOCK_TTL_SECONDS = env.int("NOTIFICATION_LOCK_TTL_SECONDS", default=120)
NOTIFICATION_REQUEUE_BATCH_SIZE = env.int("NOTIFICATION_REQUEUE_BATCH_SIZE", default=500)
# A pending notification whose queued delivery did not run for this long is queued again.
NOTIFICATION_REQUEUE_AFTER_SECONDS = env.int("NOTIFICATION_REQUEUE_AFTER_SECONDS", default=120)
# Retries due within this long wait in the broker (a countdown); longer ones wait in the
# database (next_attempt_at) for the sweeper, so a killed worker cannot hide them.
NOTIFICATION_BROKER_RETRY_MAX_SECONDS = env.float(
    "NOTIFICATION_BROKER_RETRY_MAX_SECONDS", default=60.0
)
# The sweeper (beat): makes notifications events should have made, queues due ones.
NOTIFICATION_SWEEP_INTERVAL_SECONDS = env.float("NOTIFICATION_SWEEP_INTERVAL_SECONDS", default=30.0)
NOTIFICATION_SWEEP_LOOKBACK_SECONDS = env.int("NOTIFICATION_SWEEP_LOOKBACK_SECONDS", default=21600)
NOTIFICATION_SWEEP_GRACE_SECONDS = env.int("NOTIFICATION_SWEEP_GRACE_SECONDS", default=60)
NOTIFICATION_SWEEP_BATCH_SIZE = env.int("NOTIFICATION_SWEEP_BATCH_SIZE", default=200)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=3.0)
WEBHOOK_READ_TIMEOUT_SECONDS = env.float("WEBHOOK_READ_TIMEOUT_SECONDS", default=10.0)
# A webhook delivery is retried (exponential backoff, full jitter, capped) until this long
# after its first attempt; WEBHOOK_MAX_ATTEMPTS is only a safety cap on attempts made.
WEBHOOK_RETRY_HORIZON_SECONDS = env.int("WEBHOOK_RETRY_HORIZON_SECONDS", default=86400)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_CAP_SECONDS = env.float("WEBHOOK_RETRY_CAP_SECONDS", default=3600.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=100)
# After a secret rotation the old secret keeps signing (beside the new one) this long.
WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS = env.int(
    "WEBHOOK_SECRET_ROTATION_OVERLAP_SECONDS", default=86400
)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=10)
WEBHOOK_MAX_ENDPOINTS_PER_USER = env.int("WEBHOOK_MAX_ENDPOINTS_PER_USER", default=10)
# Host names or CIDRs webhooks may reach although not public (private networks, tests).
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])

# --- Users ------------------------------------------------------------------------------
# Addresses one customer's address book holds at most (apps/users/services.py).
ADDRESS_BOOK_MAX = env.int("ADDRESS_BOOK_MAX", default=50)

# --- Auth -------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", default=300)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", default=86400)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "ISSUER": env.str("JWT_ISSUER", default="ecommerce"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # A password change makes every token issued before it invalid.
    "CHECK_REVOKE_TOKEN": True,
}
# Seconds a token's user (row and roles) stays cached; any change to the user or its groups
# retires it on commit (apps/users/authentication.py). 0 reads it for every request.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=60)

# --- API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, with the user read through the cache (apps/users/authentication.py).
        "apps.users.authentication.CachedJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "ecommerce.api.parsers.JSONParser",
        "ecommerce.api.parsers.JSONOrFormParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "ecommerce.api.parsers.ContentNegotiation",
    "EXCEPTION_HANDLER": "ecommerce.api.exceptions.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "ecommerce.api.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=20),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "ecommerce.api.filters.SearchFilter",
        "ecommerce.api.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "ecommerce.api.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["ecommerce.api.ratelimit.RateLimitThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
PROBLEM_TYPE_BASE_URI = env.str("PROBLEM_TYPE_BASE_URI", default="urn:ecommerce:problem:")

# --- Rate limits and login lockout (ecommerce/api/ratelimit.py) ---------------------------


def _rate(name: str, default: str) -> str:
    value = env.str(name, default=default)
    if not re.fullmatch(r"\d+/([1-9]\d*)?[smhd]", value):
        sys.exit(f"ImproperlyConfigured: {name}={value!r} is not a rate such as 10/m or 100/5m.")
    return value


RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
# Requests per window, per scope: "<count>/<period>", period s, m, h or d (5m: 5 minutes).
RATE_LIMITS = {
    "auth": _rate("RATE_LIMIT_AUTH", "10/m"),
    "orders": _rate("RATE_LIMIT_ORDERS", "30/m"),
    "writes": _rate("RATE_LIMIT_WRITES", "120/m"),
    "reads": _rate("RATE_LIMIT_READS", "600/m"),
}
# Scopes answered 503 while Redis cannot count; the others are then not limited.
RATE_LIMIT_FAIL_CLOSED_SCOPES = env.list("RATE_LIMIT_FAIL_CLOSED_SCOPES", default=["auth"])
LOGIN_LOCKOUT_ACCOUNT_FAILURES = env.int("LOGIN_LOCKOUT_ACCOUNT_FAILURES", default=5)
LOGIN_LOCKOUT_IP_FAILURES = env.int("LOGIN_LOCKOUT_IP_FAILURES", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Who may say, in X-Forwarded-For, which address a request came from: the proxies in these
# networks, or else the last N hops (only when nothing reaches the app around them).
# BEHIND_PROXY says a proxy stands in front: start-up then requires one of the two.
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
TRUSTED_PROXY_CIDRS = env.list("TRUSTED_PROXY_CIDRS", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_CIDRS and TRUSTED_PROXY_COUNT:
    sys.exit("ImproperlyConfigured: set TRUSTED_PROXY_CIDRS or TRUSTED_PROXY_COUNT, not both.")
for _cidr in TRUSTED_PROXY_CIDRS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as _exc:
        sys.exit(f"ImproperlyConfigured: TRUSTED_PROXY_CIDRS: {_exc}.")
# django-ratelimit's own `key="ip"` reads the address the same way.
RATELIMIT_IP_META_KEY = "ecommerce.api.ratelimit.client_ip"

SPECTACULAR_SETTINGS = {
    "TITLE": "E-commerce API",
    "DESCRIPTION": "Users, catalog, orders and notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # /api/docs and /api/redoc load their assets from this origin (drf-spectacular-sidecar,
    # pinned in requirements), not from a CDN at @latest: they work offline, and the CSP
    # (ecommerce/security.py) allows no other host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would send the schema's URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Separate request and response components, so read-only and write-only fields are
    # each in the one they belong to.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "apps.orders.models.OrderStatus",
        "ShippingMethodKindEnum": "apps.shipping.models.ShippingMethodKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ecommerce.api.schema.add_header_components",
    ],
}

# --- Metrics and tracing ------------------------------------------------------------------
# Bearer token that /metrics and /traces require. Outside DEBUG an empty one stops start-up,
# unless METRICS_PUBLIC says they are meant to be open (a network that keeps them private).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
# Root whose multiprocess files /metrics merges (gunicorn workers and Celery workers write
# below it); defaults to this process's own PROMETHEUS_MULTIPROC_DIR.
METRICS_DIR = env.str("METRICS_DIR", default=env.str("PROMETHEUS_MULTIPROC_DIR", default=""))
# HTTP latency buckets; 0.3 s is the latency objective the SLO alerts measure against.
PROMETHEUS_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    float("inf"),
)
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="ecommerce")
# Every trace while developing; one in twenty new traces in production, where each sampled
# one costs far more than the rest (its spans made and exported: a tenth sampled cost a warm
# read about 8% of its throughput, 0.05 half that; bench/run.py --sampler-ratio). Errors and
# slow requests keep their span whatever the ratio (OTEL_SLOW_REQUEST_SECONDS).
OTEL_TRACES_SAMPLER_RATIO = env.float("OTEL_TRACES_SAMPLER_RATIO", default=1.0 if DEBUG else 0.05)
# Requests that fail (5xx) or take at least this long, and tasks that fail, keep their span
# though their trace was not sampled (ecommerce.observability.tracing.keep_dropped).
OTEL_SLOW_REQUEST_SECONDS = env.float("OTEL_SLOW_REQUEST_SECONDS", default=1.0)
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
SERVICE_VERSION = env.str("SERVICE_VERSION", default="dev")
DEPLOYMENT_ENVIRONMENT = env.str(
    "DEPLOYMENT_ENVIRONMENT", default="embedded" if EMBEDDED else "production"
)
TRACES_MAX_TRACES = env.int("TRACES_MAX_TRACES", default=1000)
TRACES_MAX_SPANS_PER_TRACE = env.int("TRACES_MAX_SPANS_PER_TRACE", default=256)
TRACES_TTL_SECONDS = env.int("TRACES_TTL_SECONDS", default=3600)
TRACES_KEY_PREFIX = env.str(
    "TRACES_KEY_PREFIX", default=env.str("CACHE_KEY_PREFIX", default="ecommerce")
)

# Mounts /bench/ baseline endpoints for bench/run.py. Never enable in production.
BENCH_ENDPOINTS_ENABLED = env.bool("BENCH_ENDPOINTS_ENABLED", default=False)

# --- Health -----------------------------------------------------------------------------
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=1.0)
# Checks /health/ready requires; the others (cache, broker) only degrade it.
HEALTH_READY_REQUIRES = env.list("HEALTH_READY_REQUIRES", default=["database"])
# Mounts /health/slow?seconds=N (answers after sleeping) for the graceful-shutdown tests.
# Never enable in production: it ties up a worker on demand.
TEST_SLOW_ENDPOINT_ENABLED = env.bool("TEST_SLOW_ENDPOINT_ENABLED", default=False)

# --- Resilience (ecommerce/resilience/; checked at start-up) ----------------------------
CIRCUIT_BREAKER_FAILURE_THRESHOLD = env.int("CIRCUIT_BREAKER_FAILURE_THRESHOLD", default=5)
CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS = env.float(
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT_SECONDS", default=30.0
)
CIRCUIT_BREAKER_TRIAL_TIMEOUT_SECONDS = env.float(
    "CIRCUIT_BREAKER_TRIAL_TIMEOUT_SECONDS", default=30.0
)
# Per-breaker overrides of the three values above, keyed by breaker name (JSON).
CIRCUIT_BREAKERS = env.json("CIRCUIT_BREAKERS", default={})
PAYMENT_RETRY_MAX_ATTEMPTS = env.int("PAYMENT_RETRY_MAX_ATTEMPTS", default=8)
PAYMENT_RETRY_BASE_SECONDS = env.float("PAYMENT_RETRY_BASE_SECONDS", default=2.0)
PAYMENT_RETRY_CAP_SECONDS = env.float("PAYMENT_RETRY_CAP_SECONDS", default=300.0)

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# Embedded mode has no broker: tasks run in-process, after the commit that queued them.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's own defaults, declared: it reads its settings from Django's on every use, and a
# key Django does not define costs 11 us to look up (four spellings tried, each a miss)
# against 3 us. Every task publish reads these two, five times per order in all.
CELERY_BROKER_POOL_ACQUIRE_TIMEOUT = None
CELERY_TASK_SEND_SENT_EVENT = False
# A publish gives up after these (the request path's after-commit hand-off included: the
# outbox row waits for the relay instead): connecting, in all, and each socket operation
# on the Redis broker (a frozen Redis accepts connections and never answers).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float(
    "CELERY_BROKER_CONNECTION_TIMEOUT_SECONDS", default=1.0
)
_broker_socket_timeout_seconds = env.float("CELERY_BROKER_SOCKET_TIMEOUT_SECONDS", default=0.5)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis broker: a message delivered to a worker that died unacknowledged goes to another
# worker after the visibility timeout (checked by each worker every ~100 s). Longer than
# any task's hard time limit (300 s) plus OUTBOX_MAX_BROKER_COUNTDOWN_SECONDS, or a task
# still running or waiting for its ETA is handed out twice. Outbox deliveries come back
# sooner, through their lease.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": env.int("CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS", default=600),
    "socket_timeout": _broker_socket_timeout_seconds,
    "socket_connect_timeout": _broker_socket_timeout_seconds,
}
# The queues tasks are routed to (CELERY_TASK_ROUTES below; the Procfile's workers consume them).
CELERY_QUEUE_NAMES = ("default", "payments", "notifications", "webhooks")
# RabbitMQ (amqp://): a message redelivered more often than this (its worker died, or its
# channel closed, with it unacknowledged) is taken off its queue into `dead_letter`: a
# poison message that kills every worker taking it stops there. Part of each queue's
# declaration: changing it on a running broker needs the queues deleted (or a policy).
CELERY_BROKER_DELIVERY_LIMIT = env.int("CELERY_BROKER_DELIVERY_LIMIT", default=5)
CELERY_DEAD_LETTER_QUEUE = "dead_letter"
BROKER_IS_RABBITMQ = is_rabbitmq_url(CELERY_BROKER_URL)
if BROKER_IS_RABBITMQ:
    # Quorum queues (replicated, durable, a delivery limit), publisher confirms (a publish
    # returns once the broker has the message), a topic exchange so that countdowns and
    # retries wait in the broker (Celery's native delayed delivery), not in a worker's
    # prefetch: quorum queues have no global QoS, so a worker cannot widen its prefetch
    # for messages it holds until their ETA. No priorities (quorum queues have none).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": _broker_socket_timeout_seconds,
        "write_timeout": _broker_socket_timeout_seconds,
    }
    CELERY_TASK_DEFAULT_EXCHANGE = "tasks"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE = "quorum"
    CELERY_TASK_QUEUES = tuple(
        Queue(
            name,
            Exchange(CELERY_TASK_DEFAULT_EXCHANGE, type="topic"),
            routing_key=name,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": CELERY_BROKER_DELIVERY_LIMIT,
                "x-dead-letter-exchange": CELERY_DEAD_LETTER_QUEUE,
            },
        )
        for name in CELERY_QUEUE_NAMES
    )
# Every task retries transient infrastructure errors (database, Redis, broker) with full
# jitter over min(cap, base * 2**retries) seconds (ecommerce.tasks.Task; whole seconds).
TASK_TRANSIENT_RETRY_BASE_SECONDS = env.int("TASK_TRANSIENT_RETRY_BASE_SECONDS", default=1)
TASK_TRANSIENT_RETRY_CAP_SECONDS = env.int("TASK_TRANSIENT_RETRY_CAP_SECONDS", default=60)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "payments.*": {"queue": "payments"},
    # Webhooks have their own queue and worker pool: a slow receiver holds only them.
    "notifications.deliver_webhook": {"queue": "webhooks"},
    "notifications.*": {"queue": "notifications"},
}
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT_SECONDS", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT_SECONDS", default=180)
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {
        "task": "outbox.relay",
        "schedule": env.float("OUTBOX_RELAY_INTERVAL_SECONDS", default=10.0),
    },
    # Expiry asks the provider about each order first, so it runs with the payments.
    "expire-orders": {
        "task": "payments.expire_orders",
        "schedule": env.float("ORDER_EXPIRY_INTERVAL_SECONDS", default=60.0),
    },
    # Opens and charges lost payments and settles ones in doubt: a lost order.placed message
    # is charged within PAYMENT_UNATTEMPTED_AFTER_SECONDS plus this interval.
    "reconcile-payments": {
        "task": "payments.reconcile_payments",
        "schedule": env.float("PAYMENT_RECONCILE_INTERVAL_SECONDS", default=30.0),
    },
    "sweep-notifications": {
        "task": "notifications.sweep",
        "schedule": NOTIFICATION_SWEEP_INTERVAL_SECONDS,
    },
    "delete-idle-carts": {
        "task": "checkout.delete_idle_carts",
        "schedule": env.float("CART_EXPIRY_INTERVAL_SECONDS", default=3600.0),
    },
}

# --- Security ---------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False)
    else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Probes and scrapes reach the pod over plain HTTP, by its IP, without X-Forwarded-Proto:
# a redirect would make the kubelet's probes pass blindly and Prometheus scrape nothing.
SECURE_REDIRECT_EXEMPT = [r"^(health|metrics|traces)(/|$)"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
X_FRAME_OPTIONS = "DENY"

# --- Start-up refusals outside DEBUG (ecommerce/checks.py) -------------------------------
_refusals = startup_refusals(
    StartupSettings(
        debug=DEBUG,
        secret_key=SECRET_KEY,
        secret_key_fallbacks=SECRET_KEY_FALLBACKS,
        jwt_signing_key=SIMPLE_JWT["SIGNING_KEY"],
        metrics_token=METRICS_TOKEN,
        metrics_public=METRICS_PUBLIC,
        payment_provider_url=PAYMENT_PROVIDER_URL,
        allow_in_process_payment_sandbox=ALLOW_IN_PROCESS_PAYMENT_SANDBOX,
        redis_url=REDIS_URL,
        allow_local_state=ALLOW_LOCAL_STATE,
        behind_proxy=BEHIND_PROXY,
        trust_x_forwarded_proto=SECURE_PROXY_SSL_HEADER is not None,
        trusted_proxy_cidrs=TRUSTED_PROXY_CIDRS,
        trusted_proxy_count=TRUSTED_PROXY_COUNT,
    )
)
if _refusals:
    sys.exit("\n".join(f"ImproperlyConfigured: {problem}" for problem in _refusals))

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_JSON = env.bool("LOG_JSON", default=not DEBUG)
LOGGING = build_logging_config(json_lines=LOG_JSON, level=LOG_LEVEL)
configure_structlog()

# --- Demo data --------------------------------------------------------------------------
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="")
