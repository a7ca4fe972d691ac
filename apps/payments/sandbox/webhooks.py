"""The sandbox's event webhooks: what happened to a charge, signed, sent from a thread.

Each new charge or refund makes one event, Stripe's shape:
`{"id": "evt_...", "object": "event", "type": ..., "created": <unix>, "data": {"object": ...}}`
with `charge.succeeded` / `charge.authorized` / `charge.failed`, and later
`charge.captured`, `charge.voided` and `charge.action_completed` (the charge as
`GET /v1/charges/{id}` shows it then, its idempotency key included) and `refund.succeeded`
(the refund, with `charge_idempotency_key`, the key the refunded charge was made with).
Replays make none; a charge waiting for its customer makes none until the action ends.

A delivery is `POST <webhook_url>` with the JSON body and
`Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" under webhook_secret>`,
signed again at every attempt. One background thread per sandbox sends them in order of
due time, so a charge's answer never waits for its webhook. A non-2xx answer or no answer
is retried with backoff (0.5 s doubling, at most 30 s) up to `webhook_max_attempts`.

Delivery controls (`POST /_sandbox/config`): `webhook_delay_seconds` holds every delivery
back that long; `webhook_duplicate` sends each event twice (same id, same body);
`webhook_reorder` holds each event until the next one is made, then sends the later one
first (a held event with no successor goes after REORDER_HOLD_SECONDS); `webhook_drop`
sends nothing (counted as dropped). `GET /_sandbox/stats` counts deliveries under
`webhooks`, with the latest ones in order under `webhooks.log`.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("apps.payments.sandbox.webhooks")

SIGNATURE_HEADER = "Sandbox-Signature"
REORDER_HOLD_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 5.0
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
LOG_SIZE = 200
# Never through a proxy from the environment: the webhook URL is where it says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={sign(secret=secret, timestamp=timestamp, body=body)}"


def build_event(
    event_type: str, obj: dict[str, Any], *, created: int | None = None
) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "data": {"object": obj},
    }


@dataclass(frozen=True)
class Destination:
    """Where and how an event goes, as configured when it was made."""

    url: str
    secret: str
    delay_seconds: float
    duplicate: bool
    reorder: bool
    max_attempts: int


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    event_type: str = field(compare=False)
    body: bytes = field(compare=False)
    destination: Destination | None = field(compare=False)  # None: flush the held event
    attempt: int = field(default=1, compare=False)


class WebhookSender:
    """Queues events and delivers them from one daemon thread; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Delivery] = []
        self._seq = 0
        self._held: tuple[dict[str, Any], Destination] | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._counts = dict.fromkeys(("made", "delivered", "failed_attempts", "gave_up"), 0)
        self._counts["dropped"] = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    # --- Making events ------------------------------------------------------------------

    def emit(self, event_type: str, obj: dict[str, Any], destination: Destination | None) -> None:
        """Make an event and queue its delivery; nothing without a webhook URL."""
        if destination is None:
            return
        event = build_event(event_type, obj)
        with self._cond:
            self._counts["made"] += 1
            if destination.reorder:
                if self._held is None:
                    self._held = (event, destination)
                    self._push(None, destination, due=time.time() + REORDER_HOLD_SECONDS)
                    return
                held, self._held = self._held, None
                self._queue_event(event, destination)
                self._queue_event(*held)
                return
            self._queue_event(event, destination)

    def drop(self) -> None:
        with self._cond:
            self._counts["made"] += 1
            self._counts["dropped"] += 1

    def _queue_event(self, event: dict[str, Any], destination: Destination) -> None:
        """Queue one event (twice when duplicating). Caller holds the condition."""
        due = time.time() + destination.delay_seconds
        for _ in range(2 if destination.duplicate else 1):
            self._push(event, destination, due=due)

    def _push(self, event: dict[str, Any] | None, destination: Destination, *, due: float) -> None:
        self._seq += 1
        body = json.dumps(event).encode() if event is not None else b""
        heapq.heappush(
            self._queue,
            _Delivery(
                due=due,
                seq=self._seq,
                event_id=event["id"] if event else "",
                event_type=event["type"] if event else "",
                body=body,
                destination=destination if event is not None else None,
            ),
        )
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    # --- Controls -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every queued, held and counted delivery (one being sent still finishes)."""
        with self._cond:
            self._queue.clear()
            self._held = None
            self._generation += 1
            for name in self._counts:
                self._counts[name] = 0
            self._log.clear()
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            pending = len(self._queue) - sum(1 for d in self._queue if d.destination is None)
            return {
                **self._counts,
                "pending": pending + (1 if self._held else 0),
                "log": list(self._log),
            }

    # --- Sending ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0].due > time.time():
                    timeout = self._queue[0].due - time.time() if self._queue else None
                    self._cond.wait(timeout=timeout)
                delivery = heapq.heappop(self._queue)
                generation = self._generation
                if delivery.destination is None:  # a reorder hold ran out: send what waits
                    if self._held is not None:
                        held, self._held = self._held, None
                        self._queue_event(*held)
                    continue
            self._send(delivery, delivery.destination, generation)

    def _send(self, delivery: _Delivery, destination: Destination, generation: int) -> None:
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL checked by the config)
            destination.url,
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "payment-sandbox-webhooks",
                SIGNATURE_HEADER: signature_header(secret=destination.secret, body=delivery.body),
            },
        )
        try:
            with _opener.open(request, timeout=SEND_TIMEOUT_SECONDS) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        except (OSError, ValueError) as exc:
            logger.warning("webhook %s not delivered: %s", delivery.event_id, exc)
            status = 0
        with self._cond:
            if generation != self._generation:
                return  # reset meanwhile: counts and retries belong to the past
            self._log.append(
                {
                    "event": delivery.event_id,
                    "type": delivery.event_type,
                    "attempt": delivery.attempt,
                    "status": status,
                }
            )
            if 200 <= status < 300:
                self._counts["delivered"] += 1
                return
            self._counts["failed_attempts"] += 1
            if delivery.attempt >= destination.max_attempts:
                self._counts["gave_up"] += 1
                logger.warning(
                    "webhook %s given up after %d attempts", delivery.event_id, delivery.attempt
                )
                return
            backoff = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (delivery.attempt - 1))
            self._seq += 1
            heapq.heappush(
                self._queue,
                _Delivery(
                    due=time.time() + backoff,
                    seq=self._seq,
                    event_id=delivery.event_id,
                    event_type=delivery.event_type,
                    body=delivery.body,
                    destination=destination,
                    attempt=delivery.attempt + 1,
                ),
            )
            self._cond.notify_all()
