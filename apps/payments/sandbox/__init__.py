"""A payment provider's test mode as a small WSGI app: charges, refunds, idempotency, faults.

Standard library only and no Django, so it runs as its own lightweight process:

    python -m apps.payments.sandbox [--port 8090] [--db PATH] [--host 127.0.0.1]
    python manage.py run_payment_sandbox [--port 8090]    (the same `serve()`)
    gunicorn -w 1 --threads 8 'apps.payments.sandbox:make_app("sandbox.sqlite3")'

Endpoints (JSON in and out; `Idempotency-Key` header required on POSTs under `/v1/`):
`POST /v1/charges` {amount, currency, token, capture?}; `GET /v1/charges/{id}`;
`GET /v1/charges?idempotency_key=K` -> {"data": [...]}; `POST /v1/charges/{id}/capture`
{amount?}; `POST /v1/charges/{id}/void`; `GET|POST /v1/charges/{id}/action` (the customer's
redirect page); `POST /v1/refunds` {charge, amount};
`GET|POST /_sandbox/config`; `POST /_sandbox/reset` (also forgets queued webhooks);
`GET /_sandbox/stats`; `GET /health`.
Amounts are decimal strings exact to the currency's places; a charge answers
{id, object, status, amount, currency, decline_code, captured, amount_captured,
amount_refunded, next_action, idempotency_key, created}. Refunding a declined or uncaptured
charge or more than was captured is 400, an unknown charge 404.

Authorize and capture (Stripe's rules): `capture: false` only authorizes (201, status
`authorized`, nothing captured). `POST /v1/charges/{id}/capture` captures all or part
(`amount`) of it once: a partial capture releases the rest, a second capture is 400
`charge_already_captured`, one after `authorization_ttl_seconds` (default 7 days, a
config control) 400 `charge_expired_for_capture`. `POST /v1/charges/{id}/void` releases an
authorization, or a charge waiting for its customer (status `voided`; voiding it again
answers it as it is); a captured or declined charge is 400 `charge_not_voidable`.
Captures and voids take an Idempotency-Key like charges.

Test tokens: `tok_success` charges (201); `tok_card_declined` and `tok_insufficient_funds`
record a declined charge (402 with its `decline_code`); `tok_action_required` records a
charge waiting for the customer (202, status `action_required`, `next_action: {"type":
"redirect", "url": ...}`): the URL is a page with Confirm and Fail buttons (a form POST of
`action=confirm|fail`, JSON `{"action": ...}`, or `?action=` on the URL does the same).
Confirmed, the charge is captured (or authorized, when made with `capture: false`); failed,
it is declined with `authentication_failed`; a voided charge's page refuses (400
`action_not_pending`); `tok_processing_error` answers 500 and
records nothing, so the key stays unused: retrying it with the same body fails again, and
only a request with another token (a different body, allowed because nothing was stored)
can succeed under that key. Any other token is 400 `invalid_token`.

Idempotency follows Stripe: the first response to a key is stored with a fingerprint of the
request (path and normalised body) under a UNIQUE key; the same key and body replay that
status and body with `Idempotent-Replayed: true`, never charging twice; the same key with
another body is 409 `idempotency_key_reused`. Requests refused by validation (400, 404) and
the 500 above store nothing, as with Stripe.

Fault injection (`POST /_sandbox/config`) is per process: run one process (gunicorn `-w 1`,
with threads so one delayed answer does not hold up the rest) for predictable faults.
`latency_ms` delays every `/v1/` request; `failure_rate` answers that fraction of charge
requests 503 before anything else (`seed` makes it repeatable);
`respond_after_commit_delay_ms` sleeps after a new charge, capture or void is committed (and
its event sent) and before answering, which is how tests make "the provider charged but the
response timed out" or "the event arrived before the answer". Replays are not delayed.
`POST /_sandbox/reset` wipes all data, restores the default config and makes requests still
sleeping in `latency_ms` answer 503 instead of acting after the reset.

Event webhooks (`webhooks.py`): with `webhook_url` set through `POST /_sandbox/config`, each
new charge or refund sends a signed event (`charge.succeeded`, `charge.authorized`,
`charge.failed`, `charge.captured`, `charge.voided`, `charge.action_completed` with the
charge as it now is, `refund.succeeded`) from a background thread, retried on failure;
`webhook_secret` (default: the PAYMENT_WEBHOOK_SECRET environment variable),
`webhook_delay_seconds`, `webhook_duplicate`, `webhook_reorder`, `webhook_drop` and
`webhook_max_attempts` control the deliveries, and `GET /_sandbox/stats` counts them. The
config shows the secret only as set or not.

The port defaults to PAYMENT_SANDBOX_PORT, else to the port of PAYMENT_PROVIDER_URL (where the
app calls it), else 8090. Persistence is one SQLite file (`--db`) or a private in-memory
database (the default). The in-process sandbox of embedded mode opens PAYMENT_SANDBOX_DB
(`var/payment-sandbox.sqlite3`), so every local process, each gunicorn worker included, sees
the same charges.
"""

from __future__ import annotations

from apps.payments.sandbox.provider import (
    ACTION_REQUIRED_TOKEN,
    DECLINE_CODES,
    PROCESSING_ERROR_TOKEN,
    SUCCESS_TOKEN,
    FaultConfig,
    SandboxProvider,
    SandboxResponse,
)
from apps.payments.sandbox.server import SandboxApp, default_port, main, make_app, serve

__all__ = [
    "ACTION_REQUIRED_TOKEN",
    "DECLINE_CODES",
    "PROCESSING_ERROR_TOKEN",
    "SUCCESS_TOKEN",
    "FaultConfig",
    "SandboxApp",
    "SandboxProvider",
    "SandboxResponse",
    "default_port",
    "main",
    "make_app",
    "serve",
]
