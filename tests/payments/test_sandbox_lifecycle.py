"""The sandbox's payment lifecycle over real HTTP and through the gateway: authorize, capture
(whole, part, once), void, an expired authorization, and the customer's action (3-D Secure
stand-in) with its redirect page; and the events each step sends."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from apps.payments.exceptions import CaptureRefused, PaymentDeclined, VoidRefused
from apps.payments.gateway import ChargeStatus, HttpPaymentGateway, InProcessSandboxGateway
from apps.payments.sandbox import SandboxProvider
from tests.payments.conftest import SandboxProcess
from tests.payments.test_sandbox_webhooks import SECRET, Receiver

AMOUNT = Decimal("40.00")


def authorize(gateway: Any, key: str, token: str = "tok_success") -> Any:
    return gateway.charge(
        amount=AMOUNT, currency="EUR", token=token, idempotency_key=key, capture=False
    )


def test_an_authorization_is_captured_in_part_once_and_refunds_only_the_capture(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    authorized = authorize(gateway, "order-a")

    captured = gateway.capture(
        charge_id=authorized.charge_id, amount=Decimal("25.00"), idempotency_key="cap-a"
    )
    again = gateway.capture(
        charge_id=authorized.charge_id, amount=Decimal("25.00"), idempotency_key="cap-a"
    )
    with pytest.raises(CaptureRefused) as second:
        gateway.capture(
            charge_id=authorized.charge_id, amount=Decimal("15.00"), idempotency_key="cap-b"
        )
    refund = sandbox.http.post(
        "/v1/refunds",
        json={"charge": authorized.charge_id, "amount": "30.00"},
        headers={"Idempotency-Key": "re-a"},
    )

    assert (authorized.status, authorized.amount_captured) == (ChargeStatus.AUTHORIZED, 0)
    assert (captured.status, captured.amount_captured) == (ChargeStatus.SUCCEEDED, Decimal(25))
    assert again == captured  # the same key replays the one capture
    assert second.value.error == "charge_already_captured"  # the rest was released
    assert (refund.status_code, refund.json()["error"]) == (400, "amount_exceeds_refundable")
    assert gateway.find_charge(idempotency_key="order-a") == captured
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_voids_release_authorizations_and_never_captured_money(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    authorized = authorize(gateway, "order-v")
    captured = gateway.charge(
        amount=AMOUNT, currency="EUR", token="tok_success", idempotency_key="order-c"
    )

    voided = gateway.void(charge_id=authorized.charge_id, idempotency_key="void-v")
    voided_again = gateway.void(charge_id=authorized.charge_id, idempotency_key="void-v2")
    with pytest.raises(CaptureRefused) as capture_voided:
        gateway.capture(charge_id=authorized.charge_id, amount=AMOUNT, idempotency_key="cap-v")
    with pytest.raises(VoidRefused) as void_captured:
        gateway.void(charge_id=captured.charge_id, idempotency_key="void-c")

    assert voided.status is ChargeStatus.VOIDED
    assert voided_again.status is ChargeStatus.VOIDED
    assert capture_voided.value.error == "charge_not_capturable"
    assert void_captured.value.error == "charge_not_voidable"
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "voided": 1, "total": 2}


def test_an_expired_authorization_cannot_be_captured(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    authorized = authorize(gateway, "order-e")
    sandbox.configure(authorization_ttl_seconds=0)
    time.sleep(0.01)

    with pytest.raises(CaptureRefused) as refused:
        gateway.capture(charge_id=authorized.charge_id, amount=AMOUNT, idempotency_key="cap-e")

    assert refused.value.error == "charge_expired_for_capture"
    assert gateway.void(charge_id=authorized.charge_id, idempotency_key="void-e").status == (
        ChargeStatus.VOIDED
    )


def test_action_required_waits_on_a_redirect_page_that_confirms_or_fails(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    waiting = gateway.charge(
        amount=AMOUNT, currency="EUR", token="tok_action_required", idempotency_key="order-3ds"
    )
    failing = gateway.charge(
        amount=AMOUNT, currency="EUR", token="tok_action_required", idempotency_key="order-3df"
    )
    assert waiting.status is ChargeStatus.ACTION_REQUIRED
    assert waiting.next_action_url == f"{sandbox.url}/v1/charges/{waiting.charge_id}/action"

    page = sandbox.http.get(waiting.next_action_url)
    confirmed = sandbox.http.post(waiting.next_action_url, data={"action": "confirm"})
    reloaded = sandbox.http.post(waiting.next_action_url, data={"action": "confirm"})
    contrary = sandbox.http.post(waiting.next_action_url, data={"action": "fail"})
    failed = sandbox.http.get(f"{failing.next_action_url}?action=fail")
    bad = sandbox.http.post(failing.next_action_url, json={"action": "maybe"})

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'value="confirm"' in page.text
    assert 'value="fail"' in page.text
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "succeeded")
    assert confirmed.json()["amount_captured"] == "40.00"
    assert reloaded.status_code == 200
    assert (contrary.status_code, contrary.json()["error"]) == (400, "action_not_pending")
    assert failed.status_code == 200
    assert "declined" in failed.text
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_action")
    assert gateway.find_charge(idempotency_key="order-3ds").status is ChargeStatus.SUCCEEDED
    found = gateway.find_charge(idempotency_key="order-3df")
    assert (found.status, found.decline_code) == (ChargeStatus.DECLINED, "authentication_failed")
    # The charge request itself replays its first answer: still waiting for the customer.
    replay = gateway.charge(
        amount=AMOUNT, currency="EUR", token="tok_action_required", idempotency_key="order-3ds"
    )
    assert replay.status is ChargeStatus.ACTION_REQUIRED


def test_an_authorize_only_action_confirms_to_an_authorization_and_can_be_voided_meanwhile(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    first = authorize(gateway, "order-x", token="tok_action_required")
    second = authorize(gateway, "order-y", token="tok_action_required")

    sandbox.http.post(first.next_action_url, data={"action": "confirm"})
    gateway.void(charge_id=second.charge_id, idempotency_key="void-y")
    late = sandbox.http.post(second.next_action_url, data={"action": "confirm"})

    assert gateway.find_charge(idempotency_key="order-x").status is ChargeStatus.AUTHORIZED
    assert (late.status_code, late.json()["error"]) == (400, "action_not_pending")


def test_the_lifecycle_sends_its_events_in_process_too() -> None:
    receiver = Receiver()
    provider = SandboxProvider(":memory:")
    try:
        provider.update_config(body={"webhook_url": receiver.url, "webhook_secret": SECRET})
        gateway = InProcessSandboxGateway(provider)
        authorized = authorize(gateway, "order-1")
        gateway.capture(charge_id=authorized.charge_id, amount=AMOUNT, idempotency_key="cap-1")
        voided = authorize(gateway, "order-2")
        gateway.void(charge_id=voided.charge_id, idempotency_key="void-2")
        waiting = gateway.charge(
            amount=AMOUNT, currency="EUR", token="tok_action_required", idempotency_key="order-3"
        )
        provider.complete_action(charge_id=waiting.charge_id, outcome="fail")
        with pytest.raises(PaymentDeclined):
            gateway.charge(
                amount=AMOUNT, currency="EUR", token="tok_card_declined", idempotency_key="o-4"
            )
        deadline = time.monotonic() + 10
        while len(receiver.events()) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        events = [(e["type"], e["data"]["object"]["status"]) for e in receiver.events()]
    finally:
        provider.close()
        receiver.close()

    assert sorted(events) == sorted(
        [
            ("charge.authorized", "authorized"),
            ("charge.captured", "succeeded"),
            ("charge.authorized", "authorized"),
            ("charge.voided", "voided"),
            ("charge.action_completed", "declined"),
            ("charge.failed", "declined"),
        ]
    )
    # In process the redirect page is this app's `/_sandbox` mount (embedded mode).
    assert waiting.next_action_url.endswith(f"/_sandbox/v1/charges/{waiting.charge_id}/action")


def test_embedded_mode_serves_the_in_process_sandboxs_redirect_page(
    api_client: Any, settings: Any
) -> None:
    settings.PAYMENT_PROVIDER_URL = ""
    settings.PAYMENT_SANDBOX_DB = ":memory:"
    waiting = InProcessSandboxGateway().charge(
        amount=AMOUNT, currency="EUR", token="tok_action_required", idempotency_key="order-emb"
    )
    path = waiting.next_action_url.removeprefix(settings.PAYMENT_SANDBOX_ACTION_BASE_URL)

    page = api_client.get(f"/_sandbox{path}")
    confirmed = api_client.post(f"/_sandbox{path}", {"action": "confirm"})
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"
    hidden = api_client.get(f"/_sandbox{path}")

    assert page.status_code == 200
    assert b'value="confirm"' in page.content
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "succeeded")
    assert hidden.status_code == 404
