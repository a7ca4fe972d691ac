"""The sandbox's event webhooks, against a small receiver of our own on 127.0.0.1: what is
sent, how it is signed, and the delivery controls (delay, duplicate, reorder, drop) and
retries. The sandbox logic runs in-process here (no Django involved); the web app
receiving them is tested in test_webhooks.py and tests/integration."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.payments import webhooks
from apps.payments.sandbox import SandboxProvider
from apps.payments.sandbox import webhooks as sandbox_webhooks

SECRET = "whsec_sandbox_test"


class Receiver:
    """Records every POST; answers the statuses queued in `answers`, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append(
                        {
                            "at": time.monotonic(),
                            "body": body,
                            "signature": self.headers.get("Sandbox-Signature"),
                        }
                    )
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def provider(receiver: Receiver) -> Iterator[SandboxProvider]:
    provider = SandboxProvider(":memory:")
    response = provider.update_config(body={"webhook_url": receiver.url, "webhook_secret": SECRET})
    assert response.status == 200, response.body
    yield provider
    provider.reset()
    provider.close()


def wait_until(check: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def charge(provider: SandboxProvider, key: str, token: str = "tok_success") -> dict[str, Any]:
    response = provider.create_charge(
        body={"amount": "25.00", "currency": "EUR", "token": token}, idempotency_key=key
    )
    return response.body


def webhook_stats(provider: SandboxProvider) -> dict[str, Any]:
    return dict(provider.stats().body["webhooks"])


def test_a_charge_sends_one_signed_event_the_endpoint_accepts(
    provider: SandboxProvider, receiver: Receiver
) -> None:
    made = charge(provider, "order-1")

    wait_until(lambda: receiver.received)
    (delivery,) = receiver.received
    event = json.loads(delivery["body"])
    assert event["type"] == "charge.succeeded"
    assert event["id"].startswith("evt_")
    assert isinstance(event["created"], int)
    assert event["data"]["object"] == made
    assert event["data"]["object"]["idempotency_key"] == "order-1"
    # The app's own verification accepts it.
    timestamp = webhooks.verify_signature(
        header=delivery["signature"],
        body=delivery["body"],
        secret=SECRET,
        tolerance_seconds=300,
        now=time.time(),
    )
    assert abs(timestamp - time.time()) < 5
    wait_until(lambda: webhook_stats(provider)["delivered"] == 1)


def test_a_replayed_charge_sends_nothing_more(
    provider: SandboxProvider, receiver: Receiver
) -> None:
    charge(provider, "order-1")
    charge(provider, "order-1")

    wait_until(lambda: webhook_stats(provider)["delivered"] == 1)
    time.sleep(0.3)
    assert len(receiver.received) == 1


def test_a_decline_and_a_refund_send_their_events(
    provider: SandboxProvider, receiver: Receiver
) -> None:
    charge(provider, "order-1", token="tok_card_declined")
    made = charge(provider, "order-2")
    provider.create_refund(body={"charge": made["id"]}, idempotency_key="refund-order-2")

    wait_until(lambda: len(receiver.received) == 3)
    events = receiver.events()
    assert [e["type"] for e in events] == ["charge.failed", "charge.succeeded", "refund.succeeded"]
    assert events[0]["data"]["object"]["decline_code"] == "card_declined"
    refund = events[2]["data"]["object"]
    assert (refund["charge"], refund["amount"], refund["charge_idempotency_key"]) == (
        made["id"],
        "25.00",
        "order-2",
    )


def test_the_delay_holds_every_delivery_back(provider: SandboxProvider, receiver: Receiver) -> None:
    provider.update_config(body={"webhook_delay_seconds": 0.6})
    started = time.monotonic()
    charge(provider, "order-1")

    wait_until(lambda: receiver.received)
    assert receiver.received[0]["at"] - started >= 0.6


def test_duplicate_sends_the_same_event_twice(
    provider: SandboxProvider, receiver: Receiver
) -> None:
    provider.update_config(body={"webhook_duplicate": True})
    charge(provider, "order-1")

    wait_until(lambda: len(receiver.received) == 2)
    first, second = receiver.received
    assert first["body"] == second["body"]


def test_reorder_sends_the_later_event_first(provider: SandboxProvider, receiver: Receiver) -> None:
    provider.update_config(body={"webhook_reorder": True})
    charge(provider, "order-1")
    time.sleep(0.2)
    assert receiver.received == []  # held until the next event
    charge(provider, "order-2")

    wait_until(lambda: len(receiver.received) == 2)
    keys = [e["data"]["object"]["idempotency_key"] for e in receiver.events()]
    assert keys == ["order-2", "order-1"]


def test_reorder_sends_a_held_event_without_successor_after_the_hold(
    provider: SandboxProvider, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_webhooks, "REORDER_HOLD_SECONDS", 0.3)
    provider.update_config(body={"webhook_reorder": True})
    charge(provider, "order-1")

    wait_until(lambda: receiver.received)
    assert receiver.events()[0]["data"]["object"]["idempotency_key"] == "order-1"
    wait_until(lambda: webhook_stats(provider)["pending"] == 0)


def test_drop_sends_nothing(provider: SandboxProvider, receiver: Receiver) -> None:
    provider.update_config(body={"webhook_drop": True})
    charge(provider, "order-1")

    time.sleep(0.3)
    assert receiver.received == []
    assert webhook_stats(provider)["dropped"] == 1


def test_a_failed_delivery_is_retried_until_it_succeeds(
    provider: SandboxProvider, receiver: Receiver
) -> None:
    receiver.answers = [503, 400]
    charge(provider, "order-1")

    wait_until(lambda: webhook_stats(provider)["delivered"] == 1)
    stats = webhook_stats(provider)
    assert [entry["status"] for entry in stats["log"]] == [503, 400, 200]
    assert [entry["attempt"] for entry in stats["log"]] == [1, 2, 3]
    assert len({r["body"] for r in receiver.received}) == 1
    assert stats["failed_attempts"] == 2


def test_retries_are_bounded(provider: SandboxProvider, receiver: Receiver) -> None:
    provider.update_config(body={"webhook_max_attempts": 2})
    receiver.answers = [500, 500, 500]
    charge(provider, "order-1")

    wait_until(lambda: webhook_stats(provider)["gave_up"] == 1)
    time.sleep(1.2)
    assert len(receiver.received) == 2


def test_a_charge_answer_never_waits_for_its_webhook(provider: SandboxProvider) -> None:
    # A receiver that never answers quickly: nothing listens on this URL's port.
    provider.update_config(body={"webhook_url": "http://127.0.0.1:9/hook"})
    started = time.monotonic()
    charge(provider, "order-1")

    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    "change",
    [
        {"webhook_url": "ftp://127.0.0.1/x"},
        {"webhook_url": 5},
        {"webhook_secret": None},
        {"webhook_delay_seconds": -1},
        {"webhook_delay_seconds": True},
        {"webhook_duplicate": "yes"},
        {"webhook_reorder": 1},
        {"webhook_drop": None},
        {"webhook_max_attempts": 0},
        {"webhook_max_attempts": 21},
    ],
)
def test_bad_webhook_settings_are_refused(
    provider: SandboxProvider, change: dict[str, Any]
) -> None:
    before = provider.get_config().body

    response = provider.update_config(body=change)

    assert (response.status, response.body["error"]) == (400, "invalid_config")
    assert provider.get_config().body == before


def test_the_config_never_shows_the_secret(provider: SandboxProvider) -> None:
    assert provider.get_config().body["webhook_secret"] == "***"
