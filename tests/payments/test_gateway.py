"""The payment gateway adapters against the sandbox: outcomes, idempotency, timeouts, faults."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from apps.payments import gateway as gateway_module
from apps.payments.exceptions import (
    IdempotencyConflict,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    RefundRefused,
)
from apps.payments.gateway import (
    ChargeResult,
    ChargeStatus,
    HttpPaymentGateway,
    InProcessSandboxGateway,
    PaymentGateway,
    RefundResult,
    get_gateway,
)
from apps.payments.management.commands import run_payment_sandbox
from apps.payments.sandbox import SUCCESS_TOKEN, SandboxProvider, SandboxResponse
from tests.payments.conftest import SandboxProcess
from tests.servers import free_port, silent_tcp_server

AMOUNT = Decimal("12.34")


def charge(gateway: PaymentGateway, *, key: str, token: str = SUCCESS_TOKEN) -> ChargeResult:
    return gateway.charge(amount=AMOUNT, currency="EUR", token=token, idempotency_key=key)


def quick_gateway(url: str) -> HttpPaymentGateway:
    return HttpPaymentGateway(url, connect_timeout_seconds=0.3, read_timeout_seconds=0.3)


def test_success_token_returns_the_succeeded_charge(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    result = charge(gateway, key="order-1")

    assert result == ChargeResult(
        charge_id=result.charge_id,
        status=ChargeStatus.SUCCEEDED,
        amount=Decimal("12.34"),
        currency="EUR",
        decline_code=None,
        amount_captured=Decimal("12.34"),
    )
    assert result.charge_id.startswith("ch_")
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [("tok_card_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
def test_decline_tokens_raise_payment_declined_and_leave_a_declined_charge(
    gateway: HttpPaymentGateway, token: str, decline_code: str
) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        charge(gateway, key="order-1", token=token)

    assert declined.value.decline_code == decline_code
    assert declined.value.extra == {"decline_code": decline_code}
    found = gateway.find_charge(idempotency_key="order-1")
    assert found is not None
    assert (found.charge_id, found.status, found.decline_code) == (
        declined.value.charge_id,
        ChargeStatus.DECLINED,
        decline_code,
    )


def test_an_unknown_token_is_a_decline_without_a_charge(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        charge(gateway, key="order-1", token="tok_unknown")

    assert (declined.value.decline_code, declined.value.charge_id) == ("invalid_token", None)
    assert sandbox.stats()["charges"]["total"] == 0


def test_processing_error_is_transient_and_charges_nothing(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(gateway, key="order-1", token="tok_processing_error")

    assert unavailable.value.reason == "http_500"
    assert gateway.find_charge(idempotency_key="order-1") is None
    assert sandbox.stats()["charges"]["total"] == 0


def test_the_same_key_twice_returns_the_first_charge(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    first = charge(gateway, key="order-1")
    second = charge(gateway, key="order-1")

    assert second == first
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_the_same_key_with_another_body_is_an_idempotency_conflict(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    charge(gateway, key="order-1")

    with pytest.raises(IdempotencyConflict) as conflict:
        gateway.charge(
            amount=Decimal("99.00"), currency="EUR", token="tok_success", idempotency_key="order-1"
        )

    assert conflict.value.idempotency_key == "order-1"
    assert sandbox.stats()["charges"]["total"] == 1


def test_find_charge_by_idempotency_key(gateway: HttpPaymentGateway) -> None:
    made = charge(gateway, key="order-1")

    assert gateway.find_charge(idempotency_key="order-1") == made
    assert gateway.find_charge(idempotency_key="order-2") is None


def test_refunds_once_per_key_and_never_beyond_the_charge(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    made = charge(gateway, key="order-1")

    refund = gateway.refund(
        charge_id=made.charge_id, amount=Decimal("10.00"), idempotency_key="refund-1"
    )
    replay = gateway.refund(
        charge_id=made.charge_id, amount=Decimal("10.00"), idempotency_key="refund-1"
    )
    with pytest.raises(RefundRefused) as refused:
        gateway.refund(charge_id=made.charge_id, amount=Decimal("2.35"), idempotency_key="refund-2")

    assert refund == RefundResult(
        refund_id=refund.refund_id,
        charge_id=made.charge_id,
        status="succeeded",
        amount=Decimal("10.00"),
        currency="EUR",
    )
    assert refund.refund_id.startswith("re_")
    assert replay == refund
    assert (refused.value.error, refused.value.status_code, refused.value.charge_id) == (
        "amount_exceeds_refundable",
        400,
        made.charge_id,
    )
    assert sandbox.stats()["refunds"] == {"succeeded": 1}


def test_refunding_a_declined_charge_is_refused(gateway: HttpPaymentGateway) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        charge(gateway, key="order-1", token="tok_card_declined")
    charge_id = declined.value.charge_id
    assert charge_id is not None

    with pytest.raises(RefundRefused) as refused:
        gateway.refund(charge_id=charge_id, amount=AMOUNT, idempotency_key="refund-1")

    assert refused.value.error == "charge_not_refundable"


def test_failure_rate_one_is_provider_unavailable(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    sandbox.configure(failure_rate=1)

    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(gateway, key="order-1")

    assert unavailable.value.reason == "http_503"
    assert sandbox.stats()["charges"]["total"] == 0


def test_latency_beyond_the_read_timeout_fails_fast(sandbox: SandboxProcess) -> None:
    sandbox.configure(latency_ms=3000)
    gateway = quick_gateway(sandbox.url)
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(gateway, key="order-1")

    assert unavailable.value.reason == "read_timeout"
    assert time.monotonic() - started < 1.0


def test_charged_but_timed_out_is_found_by_key_and_retried_without_a_second_charge(
    sandbox: SandboxProcess,
) -> None:
    sandbox.configure(respond_after_commit_delay_ms=1500)
    gateway = quick_gateway(sandbox.url)

    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(gateway, key="order-1")
    found = gateway.find_charge(idempotency_key="order-1")
    retried = charge(gateway, key="order-1")

    assert unavailable.value.reason == "read_timeout"
    assert found is not None
    assert found.status is ChargeStatus.SUCCEEDED
    assert retried == found
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_a_sandbox_that_is_down_is_provider_unavailable_fast() -> None:
    gateway = quick_gateway(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(gateway, key="order-1")

    assert unavailable.value.reason == "connect_error"
    assert time.monotonic() - started < 0.5


def test_a_provider_that_never_answers_times_out_on_read() -> None:
    with silent_tcp_server() as port:
        gateway = quick_gateway(f"http://127.0.0.1:{port}")
        started = time.monotonic()

        with pytest.raises(ProviderUnavailable) as unavailable:
            gateway.find_charge(idempotency_key="order-1")

    assert unavailable.value.reason == "read_timeout"
    assert time.monotonic() - started < 1.0


def test_ten_concurrent_charges_with_one_key_make_one_charge(
    gateway: HttpPaymentGateway, sandbox: SandboxProcess
) -> None:
    start = threading.Barrier(10)

    def charge_at_once(_: int) -> ChargeResult:
        start.wait(timeout=5)
        return charge(gateway, key="order-1")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(charge_at_once, range(10)))

    assert len({r.charge_id for r in results}) == 1
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def outcome(gateway: PaymentGateway, token: str) -> tuple[Any, ...]:
    """What a charge with `token` comes to, without the ids that differ per provider."""
    try:
        result = charge(gateway, key=f"key-{token}", token=token)
    except PaymentDeclined as exc:
        return ("declined", exc.decline_code, exc.charge_id is not None)
    except ProviderUnavailable as exc:
        return ("unavailable", exc.reason)
    return ("charged", result.status, result.amount, result.currency, result.decline_code)


@pytest.mark.parametrize(
    "token",
    [
        "tok_success",
        "tok_card_declined",
        "tok_insufficient_funds",
        "tok_processing_error",
        "tok_unknown",
    ],
)
def test_the_in_process_gateway_matches_the_http_one(
    gateway: HttpPaymentGateway, token: str
) -> None:
    in_process = InProcessSandboxGateway(SandboxProvider(":memory:"))

    assert outcome(in_process, token) == outcome(gateway, token)


def test_the_in_process_gateway_keeps_the_idempotency_rules() -> None:
    provider = SandboxProvider(":memory:")
    gateway = InProcessSandboxGateway(provider)

    made = charge(gateway, key="order-1")
    again = charge(gateway, key="order-1")
    with pytest.raises(IdempotencyConflict):
        gateway.charge(
            amount=Decimal("1.00"), currency="EUR", token="tok_success", idempotency_key="order-1"
        )
    refund = gateway.refund(charge_id=made.charge_id, amount=AMOUNT, idempotency_key="refund-1")

    assert again == made
    assert gateway.find_charge(idempotency_key="order-1") == made
    assert (refund.charge_id, refund.amount) == (made.charge_id, AMOUNT)
    assert provider.stats().body["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_the_in_process_gateway_honours_fault_injection() -> None:
    provider = SandboxProvider(":memory:")
    provider.update_config(body={"failure_rate": 1})

    with pytest.raises(ProviderUnavailable) as unavailable:
        charge(InProcessSandboxGateway(provider), key="order-1")

    assert unavailable.value.reason == "http_503"


class CannedProvider(SandboxProvider):
    """A provider that answers every charge with one canned response."""

    def __init__(self, response: SandboxResponse) -> None:
        super().__init__(":memory:")
        self.response = response

    def create_charge(
        self, *, body: Any, idempotency_key: str | None, base_url: str = ""
    ) -> SandboxResponse:
        return self.response


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (201, {"unexpected": True}, ProviderUnavailable, "invalid_response"),
        (408, {}, ProviderUnavailable, "http_408"),
        (429, {"error": "rate_limited"}, ProviderUnavailable, "http_429"),
        (502, {}, ProviderUnavailable, "http_502"),
        (409, {"error": "idempotency_key_in_use"}, ProviderUnavailable, "http_409"),
        (409, {"error": "idempotency_key_reused"}, IdempotencyConflict, None),
        (400, {"error": "invalid_amount"}, ProviderRejected, None),
    ],
)
def test_provider_answers_map_to_typed_errors(
    status: int, body: dict[str, Any], error: type[Exception], reason: str | None
) -> None:
    gateway = InProcessSandboxGateway(CannedProvider(SandboxResponse(status, body)))

    with pytest.raises(error) as raised:
        charge(gateway, key="order-1")

    assert getattr(raised.value, "reason", None) == reason


def test_get_gateway_uses_http_when_a_provider_url_is_set(settings: Any) -> None:
    settings.PAYMENT_PROVIDER_URL = "http://payments.internal:8090/"
    settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS = 0.7
    settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS = 3.5

    gateway = get_gateway()

    assert isinstance(gateway, HttpPaymentGateway)
    assert gateway.base_url == "http://payments.internal:8090"
    assert (gateway.timeout.connect, gateway.timeout.read) == (0.7, 3.5)


def test_get_gateway_runs_the_sandbox_in_process_without_a_url(
    settings: Any,
) -> None:
    settings.PAYMENT_PROVIDER_URL = ""

    first, second = get_gateway(), get_gateway()

    assert isinstance(first, InProcessSandboxGateway)
    assert isinstance(second, InProcessSandboxGateway)
    # One sandbox per process, so a retry through a new gateway still finds its key.
    assert first.provider is second.provider


def test_http_gateways_share_one_client_per_process(sandbox: SandboxProcess) -> None:
    charge(quick_gateway(sandbox.url), key="order-1")
    client = gateway_module._client
    charge(quick_gateway(sandbox.url), key="order-2")

    assert client is not None
    assert gateway_module._client is client


def test_a_provider_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="must be http"):
        HttpPaymentGateway("payments:8090", connect_timeout_seconds=1, read_timeout_seconds=1)


def test_the_management_command_serves_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, str]] = []
    monkeypatch.setattr(
        run_payment_sandbox, "serve", lambda host, port, db: calls.append((host, port, db))
    )

    call_command(run_payment_sandbox.Command(), "--port", "8091", "--db", "sandbox.sqlite3")

    assert calls == [("127.0.0.1", 8091, "sandbox.sqlite3")]
