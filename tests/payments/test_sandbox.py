"""The payment sandbox over real HTTP: test tokens, idempotency, refunds, faults, lifecycle."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.payments.sandbox import SUCCESS_TOKEN
from tests.payments.conftest import SandboxProcess


def post_charge(
    sandbox: SandboxProcess,
    *,
    key: str | None,
    token: str = SUCCESS_TOKEN,
    amount: Any = "12.34",
    currency: str = "EUR",
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    body = {"amount": amount, "currency": currency, "token": token}
    return sandbox.http.post("/v1/charges", json=body, headers=headers)


def post_refund(
    sandbox: SandboxProcess, *, key: str, charge: str, amount: str | None
) -> httpx.Response:
    body = {"charge": charge} if amount is None else {"charge": charge, "amount": amount}
    return sandbox.http.post("/v1/refunds", json=body, headers={"Idempotency-Key": key})


def post_charge_with_timeout(
    sandbox: SandboxProcess, *, key: str, read_timeout_seconds: float
) -> httpx.Response:
    return sandbox.http.post(
        "/v1/charges",
        json={"amount": "1.00", "currency": "EUR", "token": "tok_success"},
        headers={"Idempotency-Key": key},
        timeout=httpx.Timeout(1.0, read=read_timeout_seconds),
    )


def test_health(sandbox: SandboxProcess) -> None:
    response = sandbox.http.get("/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_success_token_makes_a_succeeded_charge(sandbox: SandboxProcess) -> None:
    response = post_charge(sandbox, key="k-1", amount="12.3", currency="eur")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("ch_")
    assert body["created"].endswith("Z")
    assert {k: v for k, v in body.items() if k not in ("id", "created")} == {
        "object": "charge",
        "status": "succeeded",
        "amount": "12.30",
        "currency": "EUR",
        "decline_code": None,
        "captured": True,
        "amount_captured": "12.30",
        "amount_refunded": "0.00",
        "next_action": None,
        "idempotency_key": "k-1",
    }
    assert "Idempotent-Replayed" not in response.headers
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [("tok_card_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")],
)
def test_decline_tokens_record_a_declined_charge(
    sandbox: SandboxProcess, token: str, decline_code: str
) -> None:
    response = post_charge(sandbox, key="k-1", token=token)

    assert response.status_code == 402
    body = response.json()
    assert body["id"].startswith("ch_")
    assert (body["status"], body["decline_code"], body["amount"]) == (
        "declined",
        decline_code,
        "12.34",
    )
    assert sandbox.stats()["charges"] == {"succeeded": 0, "declined": 1, "total": 1}


def test_processing_error_records_nothing_and_leaves_the_key_unused(
    sandbox: SandboxProcess,
) -> None:
    first = post_charge(sandbox, key="k-1", token="tok_processing_error")
    again = post_charge(sandbox, key="k-1", token="tok_processing_error")

    assert (first.status_code, first.json()["error"]) == (500, "processing_error")
    assert (again.status_code, again.json()["error"]) == (500, "processing_error")
    assert sandbox.stats()["charges"]["total"] == 0
    assert sandbox.http.get("/v1/charges", params={"idempotency_key": "k-1"}).json() == {"data": []}
    # Nothing was stored under the key, so another token may still use it.
    assert post_charge(sandbox, key="k-1", token="tok_success").status_code == 201


def test_unknown_token_is_invalid_and_records_nothing(sandbox: SandboxProcess) -> None:
    response = post_charge(sandbox, key="k-1", token="tok_made_up")

    assert (response.status_code, response.json()["error"]) == (400, "invalid_token")
    assert sandbox.stats()["charges"]["total"] == 0


def test_a_charge_without_idempotency_key_is_refused(sandbox: SandboxProcess) -> None:
    response = post_charge(sandbox, key=None)

    assert (response.status_code, response.json()["error"]) == (400, "idempotency_key_required")
    assert sandbox.stats()["charges"]["total"] == 0


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        ("12.345", "EUR", "invalid_amount"),
        (12.34, "EUR", "invalid_amount"),
        ("0", "EUR", "invalid_amount"),
        ("-1", "EUR", "invalid_amount"),
        ("abc", "EUR", "invalid_amount"),
        ("100.5", "JPY", "invalid_amount"),
        ("12.34", "EURO", "invalid_currency"),
    ],
)
def test_malformed_charges_are_refused(
    sandbox: SandboxProcess, amount: Any, currency: str, error: str
) -> None:
    response = post_charge(sandbox, key="k-1", amount=amount, currency=currency)

    assert (response.status_code, response.json()["error"]) == (400, error)
    assert sandbox.stats()["charges"]["total"] == 0


def test_same_key_and_body_replays_the_first_response(sandbox: SandboxProcess) -> None:
    first = post_charge(sandbox, key="k-1")
    # The same amount spelled differently is the same request.
    replay = post_charge(sandbox, key="k-1", amount="12.340", currency="eur")

    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_a_declined_charge_replays_as_declined(sandbox: SandboxProcess) -> None:
    first = post_charge(sandbox, key="k-1", token="tok_card_declined")
    replay = post_charge(sandbox, key="k-1", token="tok_card_declined")

    assert (replay.status_code, replay.json()) == (402, first.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert sandbox.stats()["charges"] == {"succeeded": 0, "declined": 1, "total": 1}


@pytest.mark.parametrize(
    "changes",
    [{"amount": "12.35"}, {"currency": "USD"}, {"token": "tok_card_declined"}],
)
def test_same_key_with_another_body_is_a_conflict(
    sandbox: SandboxProcess, changes: dict[str, str]
) -> None:
    post_charge(sandbox, key="k-1")

    response = post_charge(sandbox, key="k-1", **changes)

    assert (response.status_code, response.json()["error"]) == (409, "idempotency_key_reused")
    assert sandbox.stats()["charges"]["total"] == 1


def test_a_charge_key_reused_for_a_refund_is_a_conflict(sandbox: SandboxProcess) -> None:
    charge = post_charge(sandbox, key="k-1").json()

    response = post_refund(sandbox, key="k-1", charge=charge["id"], amount="1.00")

    assert (response.status_code, response.json()["error"]) == (409, "idempotency_key_reused")
    assert sandbox.stats()["refunds"] == {"succeeded": 0}


def test_charges_are_found_by_id_and_by_idempotency_key(sandbox: SandboxProcess) -> None:
    charge = post_charge(sandbox, key="k-1").json()
    post_charge(sandbox, key="k-2", token="tok_card_declined")

    by_id = sandbox.http.get(f"/v1/charges/{charge['id']}")
    by_key = sandbox.http.get("/v1/charges", params={"idempotency_key": "k-1"})
    unknown_id = sandbox.http.get("/v1/charges/ch_unknown")
    unknown_key = sandbox.http.get("/v1/charges", params={"idempotency_key": "k-3"})

    assert (by_id.status_code, by_id.json()) == (200, charge)
    assert (by_key.status_code, by_key.json()) == (200, {"data": [charge]})
    assert (unknown_id.status_code, unknown_id.json()["error"]) == (404, "charge_not_found")
    assert (unknown_key.status_code, unknown_key.json()) == (200, {"data": []})


def test_partial_refunds_up_to_the_charged_amount(sandbox: SandboxProcess) -> None:
    charge = post_charge(sandbox, key="k-1", amount="10.00").json()

    first = post_refund(sandbox, key="r-1", charge=charge["id"], amount="4")
    rest = post_refund(sandbox, key="r-2", charge=charge["id"], amount=None)
    over = post_refund(sandbox, key="r-3", charge=charge["id"], amount="0.01")

    assert first.status_code == 201
    assert first.json()["id"].startswith("re_")
    assert {k: first.json()[k] for k in ("status", "charge", "amount", "currency")} == {
        "status": "succeeded",
        "charge": charge["id"],
        "amount": "4.00",
        "currency": "EUR",
    }
    assert (rest.status_code, rest.json()["amount"]) == (201, "6.00")
    assert (over.status_code, over.json()["error"]) == (400, "amount_exceeds_refundable")
    assert sandbox.http.get(f"/v1/charges/{charge['id']}").json()["amount_refunded"] == "10.00"
    assert sandbox.stats()["refunds"] == {"succeeded": 2}


def test_refunding_more_than_the_charge_is_refused(sandbox: SandboxProcess) -> None:
    charge = post_charge(sandbox, key="k-1", amount="10.00").json()

    response = post_refund(sandbox, key="r-1", charge=charge["id"], amount="10.01")

    assert (response.status_code, response.json()["error"]) == (400, "amount_exceeds_refundable")
    assert sandbox.stats()["refunds"] == {"succeeded": 0}
    # A refusal stores nothing: the key can still carry a valid refund.
    assert post_refund(sandbox, key="r-1", charge=charge["id"], amount="10").status_code == 201


def test_declined_and_unknown_charges_cannot_be_refunded(sandbox: SandboxProcess) -> None:
    declined = post_charge(sandbox, key="k-1", token="tok_card_declined").json()

    refund_declined = post_refund(sandbox, key="r-1", charge=declined["id"], amount="1.00")
    refund_unknown = post_refund(sandbox, key="r-2", charge="ch_unknown", amount="1.00")

    assert (refund_declined.status_code, refund_declined.json()["error"]) == (
        400,
        "charge_not_refundable",
    )
    assert (refund_unknown.status_code, refund_unknown.json()["error"]) == (
        404,
        "charge_not_found",
    )
    assert sandbox.stats()["refunds"] == {"succeeded": 0}


def test_refunds_follow_the_idempotency_rules(sandbox: SandboxProcess) -> None:
    charge = post_charge(sandbox, key="k-1", amount="10.00").json()
    first = post_refund(sandbox, key="r-1", charge=charge["id"], amount="4.00")

    replay = post_refund(sandbox, key="r-1", charge=charge["id"], amount="4")
    other = post_refund(sandbox, key="r-1", charge=charge["id"], amount="5.00")

    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["error"]) == (409, "idempotency_key_reused")
    assert sandbox.stats()["refunds"] == {"succeeded": 1}


def test_config_defaults_changes_and_validation(sandbox: SandboxProcess) -> None:
    defaults = sandbox.http.get("/_sandbox/config").json()
    changed = sandbox.configure(latency_ms=5, failure_rate=0)
    unknown = sandbox.http.post("/_sandbox/config", json={"colour": "red"})
    out_of_range = sandbox.http.post("/_sandbox/config", json={"failure_rate": 1.5})

    assert defaults == {
        "latency_ms": 0,
        "failure_rate": 0.0,
        "respond_after_commit_delay_ms": 0,
        "seed": None,
        "webhook_url": None,
        # The secret shows only as set or not (taken from PAYMENT_WEBHOOK_SECRET).
        "webhook_secret": defaults["webhook_secret"],
        "webhook_delay_seconds": 0.0,
        "webhook_duplicate": False,
        "webhook_reorder": False,
        "webhook_drop": False,
        "webhook_max_attempts": 5,
        "authorization_ttl_seconds": 7 * 24 * 3600,
    }
    assert defaults["webhook_secret"] in ("", "***")
    assert changed == {**defaults, "latency_ms": 5}
    assert (unknown.status_code, out_of_range.status_code) == (400, 400)
    assert sandbox.http.get("/_sandbox/config").json() == changed


def test_failure_rate_one_answers_503_and_charges_nothing(sandbox: SandboxProcess) -> None:
    sandbox.configure(failure_rate=1)

    responses = [post_charge(sandbox, key=f"k-{i}") for i in range(3)]

    assert [r.status_code for r in responses] == [503, 503, 503]
    assert sandbox.stats()["charges"]["total"] == 0


def test_a_seeded_failure_rate_repeats_its_pattern(sandbox: SandboxProcess) -> None:
    def pattern() -> list[int]:
        sandbox.reset()
        sandbox.configure(failure_rate=0.5, seed=42)
        return [post_charge(sandbox, key=f"k-{i}").status_code for i in range(12)]

    first = pattern()

    assert pattern() == first
    assert set(first) == {201, 503}


def test_latency_delays_provider_requests_but_not_controls(sandbox: SandboxProcess) -> None:
    sandbox.configure(latency_ms=300)

    started = time.monotonic()
    assert sandbox.http.get("/_sandbox/stats").status_code == 200
    control_seconds = time.monotonic() - started
    started = time.monotonic()
    assert post_charge(sandbox, key="k-1").status_code == 201
    charge_seconds = time.monotonic() - started

    assert control_seconds < 0.25
    assert charge_seconds >= 0.3


def test_a_reset_cancels_requests_still_sleeping_in_latency(sandbox: SandboxProcess) -> None:
    sandbox.configure(latency_ms=400)
    with pytest.raises(httpx.ReadTimeout):
        post_charge_with_timeout(sandbox, key="k-1", read_timeout_seconds=0.1)

    sandbox.reset()
    time.sleep(0.6)

    assert sandbox.stats()["charges"]["total"] == 0


def test_respond_after_commit_delay_charges_before_answering(sandbox: SandboxProcess) -> None:
    sandbox.configure(respond_after_commit_delay_ms=1500)

    with pytest.raises(httpx.ReadTimeout):
        post_charge_with_timeout(sandbox, key="k-1", read_timeout_seconds=0.3)

    found = sandbox.http.get("/v1/charges", params={"idempotency_key": "k-1"}).json()["data"]
    assert [c["status"] for c in found] == ["succeeded"]
    replay = post_charge(sandbox, key="k-1", amount="1.00")
    assert (replay.status_code, replay.json()["id"]) == (201, found[0]["id"])
    assert sandbox.stats()["charges"] == {"succeeded": 1, "declined": 0, "total": 1}


def test_reset_wipes_charges_and_config(sandbox: SandboxProcess) -> None:
    post_charge(sandbox, key="k-1")
    sandbox.configure(latency_ms=10)

    sandbox.reset()

    assert sandbox.stats()["charges"]["total"] == 0
    assert sandbox.http.get("/_sandbox/config").json()["latency_ms"] == 0
    assert post_charge(sandbox, key="k-1").headers.get("Idempotent-Replayed") is None


def test_unknown_paths_methods_and_bodies(sandbox: SandboxProcess) -> None:
    missing = sandbox.http.get("/v2/nothing")
    wrong_method = sandbox.http.delete("/v1/charges")
    not_json = sandbox.http.post(
        "/v1/charges", content=b"{oops", headers={"Idempotency-Key": "k-1"}
    )

    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_json")


@pytest.mark.slow
def test_sigterm_stops_the_process_cleanly(tmp_path: Path) -> None:
    process = SandboxProcess(log_path=tmp_path / "sandbox.log")
    started = time.monotonic()

    process.process.send_signal(signal.SIGTERM)
    exit_code = process.process.wait(timeout=5)

    assert exit_code == 0
    assert time.monotonic() - started < 2
    assert "payment sandbox stopped" in (tmp_path / "sandbox.log").read_text()
    process.stop()


@pytest.mark.slow
def test_a_database_file_keeps_charges_and_keys_across_restarts(tmp_path: Path) -> None:
    db_path = tmp_path / "sandbox.sqlite3"
    first = SandboxProcess(log_path=tmp_path / "first.log", db_path=db_path)
    try:
        charge = post_charge(first, key="k-1").json()
    finally:
        assert first.stop() == 0

    second = SandboxProcess(log_path=tmp_path / "second.log", db_path=db_path)
    try:
        by_id = second.http.get(f"/v1/charges/{charge['id']}")
        replay = post_charge(second, key="k-1")
        stats = second.stats()
    finally:
        second.stop()

    assert (by_id.status_code, by_id.json()) == (200, charge)
    assert (replay.status_code, replay.json()["id"]) == (201, charge["id"])
    assert stats["charges"] == {"succeeded": 1, "declined": 0, "total": 1}
