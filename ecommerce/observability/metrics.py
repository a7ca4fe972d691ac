"""Prometheus metrics, declared once; labels stay low-cardinality (names, outcomes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `*_created` series double the exposition for nothing our alerts or dashboards use.
disable_created_metrics()

CACHE_REQUESTS = Counter(
    "ecommerce_cache_requests_total",
    "Read-through cache lookups by cache and result (hit, miss, error, bypass).",
    ["cache", "result"],
)
FAST_READS = Counter(
    "ecommerce_fast_reads_total",
    "GETs of the fast-read routes by outcome: served or not_modified before Django's "
    "handler, or passed to it (a miss, a condition not met, a refusal, no template yet).",
    ["route", "outcome"],
)
CACHE_COMPUTES = Counter(
    "ecommerce_cache_computes_total",
    "Values computed from the source of truth (database reads) behind a read-through cache.",
    ["cache"],
)
CACHE_INVALIDATION_ERRORS = Counter(
    "ecommerce_cache_invalidation_errors_total",
    "Invalidations that could not reach the cache.",
    ["cache"],
)
# ecommerce_circuit_breaker_state is read from the shared store at scrape time
# (ecommerce.resilience.breaker.BreakerStateCollector), not set here by each process.
CIRCUIT_BREAKER_TRANSITIONS = Counter(
    "ecommerce_circuit_breaker_transitions_total",
    "Circuit breaker state changes by breaker name, from state and to state.",
    ["name", "from_state", "to_state"],
)

# --- Business ---------------------------------------------------------------------------
ORDERS_CREATED = Counter(
    "ecommerce_orders_created_total", "Orders placed, by currency.", ["currency"]
)
ORDER_VALUE = Counter(
    "ecommerce_order_value_total", "Total value of orders placed, by currency.", ["currency"]
)
PAYMENTS = Counter(
    "ecommerce_payments_total",
    "Payment attempts by outcome (succeeded, declined, provider_error, circuit_open).",
    ["outcome"],
)
PAYMENT_LIFECYCLE = Counter(
    "ecommerce_payment_lifecycle_total",
    "Payment steps past the charge, by step (authorized, action_required, captured, voided,"
    " capture_failed).",
    ["step"],
)
PAYMENT_SWEEPS = Counter(
    "ecommerce_payment_sweep_total",
    "What the payment sweeps did, by sweep (payments_reconcile, orders_expiry) and outcome;"
    " deferred: left for the next run because the provider could not be asked.",
    ["sweep", "outcome"],
)
REFUNDS = Counter(
    "ecommerce_refunds_total",
    "Refunds the provider answered, by origin (staff, cancellation, compensation, provider,"
    " return) and outcome (succeeded, failed).",
    ["origin", "outcome"],
)
PAYMENT_WEBHOOK_EVENTS = Counter(
    "ecommerce_payment_webhook_events_total",
    "Payment provider webhook deliveries by provider, event type and outcome (what applying"
    " it did: paid, declined, refunded, already_recorded, duplicate, deferred, ...; refused:"
    " bad signature, timestamp or body). type is `unknown` when the body could not be read.",
    ["provider", "type", "outcome"],
)
PAYMENT_PROVIDER_LATENCY = Histogram(
    "ecommerce_payment_provider_latency_seconds",
    "Payment provider call latency by operation (charge, refund, find_charge).",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NOTIFICATIONS = Counter(
    "ecommerce_notifications_total",
    "Notification deliveries by channel and outcome (sent, retry, failed, deferred: refused "
    "by an open breaker, not an attempt).",
    ["channel", "outcome"],
)
NOTIFICATION_SWEEP_ACTIONS = Counter(
    "ecommerce_notification_sweep_actions_total",
    "What the notification sweeper did: events_handled (events found without their "
    "notifications), requeued (due deliveries queued).",
    ["action"],
)
RATE_LIMITED = Counter(
    "ecommerce_rate_limited_requests_total",
    "Requests refused by a rate limit, by scope.",
    ["scope"],
)

# --- Celery -----------------------------------------------------------------------------
CELERY_TASK_RUNS = Counter(
    "ecommerce_celery_task_runs_total",
    "Celery task runs by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "ecommerce_celery_task_duration_seconds",
    "Celery task run time by task name.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CELERY_WORKER_HEARTBEAT = Gauge(
    "ecommerce_celery_worker_heartbeat_timestamp_seconds",
    "Unix time of each live worker's latest heartbeat.",
    ["worker"],
    multiprocess_mode="max",
)
