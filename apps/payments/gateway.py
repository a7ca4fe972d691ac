"""The payment gateway port and its adapters: the provider over HTTP, or the sandbox in-process.

Services depend on `PaymentGateway` and take an adapter from `get_gateway()`. Both adapters
read the provider's answers through the same functions, so they fail and succeed alike:
201 is a charge, 402 (and an unknown token) `PaymentDeclined`, 409 `IdempotencyConflict`,
timeouts, connection errors, 5xx, 408 and 429 `ProviderUnavailable`. Every call that
writes carries an idempotency key, which is what makes a retry after a timeout safe.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, Protocol

import httpx
from django.conf import settings

from apps.payments.exceptions import (
    CaptureRefused,
    IdempotencyConflict,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    RefundRefused,
    VoidRefused,
)
from apps.payments.sandbox import SandboxProvider
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


class ChargeStatus(StrEnum):
    """A recorded charge's outcome; a StrEnum, so it also equals the provider's string."""

    SUCCEEDED = "succeeded"  # captured (all or part of it)
    DECLINED = "declined"
    AUTHORIZED = "authorized"  # held on the card, not captured yet
    ACTION_REQUIRED = "action_required"  # waiting for the customer (next_action_url)
    VOIDED = "voided"  # an authorization released without a capture


@dataclass(frozen=True)
class ChargeResult:
    """A charge as the provider recorded it."""

    charge_id: str
    status: ChargeStatus
    amount: Decimal
    currency: str
    decline_code: str | None = None
    # What was captured: the amount of an immediate charge, a partial capture's part.
    amount_captured: Decimal = Decimal(0)
    # Where the customer goes to finish an action_required charge.
    next_action_url: str | None = None


@dataclass(frozen=True)
class RefundResult:
    """A refund as the provider recorded it."""

    refund_id: str
    charge_id: str
    status: str
    amount: Decimal
    currency: str


class PaymentGateway(Protocol):
    """The port: what the payment services need from a payment provider."""

    def charge(
        self,
        *,
        amount: Decimal,
        currency: str,
        token: str,
        idempotency_key: str,
        capture: bool = True,
    ) -> ChargeResult:
        """Charge `token` at most once per `idempotency_key`: captured (succeeded), only
        authorized (`capture=False`), or waiting for the customer (action_required, with
        its `next_action_url`); return that charge.

        Repeating a call with the same key and arguments returns the first outcome.
        Raises PaymentDeclined (terminal), ProviderUnavailable (retry with the same key;
        the charge may have happened), IdempotencyConflict (key used for another request).
        """
        ...

    def capture(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        """Capture `amount` of an authorized charge (the rest is released), once per key.

        Raises CaptureRefused (already captured, voided, expired: terminal),
        IdempotencyConflict, ProviderUnavailable.
        """
        ...

    def void(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        """Release an authorization or a charge waiting for its customer, once per key.

        Raises VoidRefused (captured or declined: terminal), IdempotencyConflict,
        ProviderUnavailable.
        """
        ...

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """The charge made under `idempotency_key`, succeeded or declined, or None.

        Raises ProviderUnavailable.
        """
        ...

    def refund(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        """Refund `amount` of a succeeded charge at most once per `idempotency_key`.

        Raises RefundRefused, IdempotencyConflict, ProviderUnavailable.
        """
        ...


# --- Reading the provider's answers (both adapters) --------------------------------------


def _error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return "unknown"


def _raise_for_status(status_code: int, body: Any, *, idempotency_key: str | None) -> NoReturn:
    error = _error_code(body)
    if status_code in (408, 429) or status_code >= 500:
        raise ProviderUnavailable(reason=f"http_{status_code}")
    if status_code == 409 and error == "idempotency_key_reused" and idempotency_key:
        raise IdempotencyConflict(idempotency_key=idempotency_key)
    if status_code == 409:
        # Stripe's other 409: a request with this key is still running. Retry later.
        raise ProviderUnavailable(reason="http_409")
    raise ProviderRejected(status_code=status_code, error=error)


def _parse_charge(body: Any) -> ChargeResult:
    try:
        status = ChargeStatus(body["status"])
        amount = Decimal(body["amount"])
        captured = body.get("amount_captured")
        next_action = body.get("next_action") or {}
        return ChargeResult(
            charge_id=str(body["id"]),
            status=status,
            amount=amount,
            currency=str(body["currency"]),
            decline_code=body.get("decline_code"),
            # A provider answering without it (an older sandbox): a succeeded charge is whole.
            amount_captured=(
                Decimal(captured)
                if captured is not None
                else (amount if status is ChargeStatus.SUCCEEDED else Decimal(0))
            ),
            next_action_url=str(next_action["url"]) if next_action.get("url") else None,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        # Whatever happened is unknown, and a retry under the same key is safe.
        raise ProviderUnavailable(reason="invalid_response") from exc


def _parse_refund(body: Any) -> RefundResult:
    try:
        return RefundResult(
            refund_id=str(body["id"]),
            charge_id=str(body["charge"]),
            status=str(body["status"]),
            amount=Decimal(body["amount"]),
            currency=str(body["currency"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ProviderUnavailable(reason="invalid_response") from exc


def _charge_request(*, amount: Decimal, currency: str, token: str, capture: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": format(amount, "f"), "currency": currency, "token": token}
    if not capture:  # the default left out, so the request is what it always was
        body["capture"] = False
    return body


def _capture_request(*, amount: Decimal) -> dict[str, str]:
    return {"amount": format(amount, "f")}


def _refund_request(*, charge_id: str, amount: Decimal) -> dict[str, str]:
    return {"charge": charge_id, "amount": format(amount, "f")}


OPEN_CHARGE = frozenset(
    {ChargeStatus.SUCCEEDED, ChargeStatus.AUTHORIZED, ChargeStatus.ACTION_REQUIRED}
)


def _charge_outcome(status_code: int, body: Any, *, idempotency_key: str) -> ChargeResult:
    if status_code in (200, 201, 202, 402):
        result = _parse_charge(body)
        if result.status in OPEN_CHARGE and status_code != 402:
            return result
        raise PaymentDeclined(
            decline_code=result.decline_code or "declined", charge_id=result.charge_id
        )
    if status_code == 400 and _error_code(body) == "invalid_token":
        raise PaymentDeclined(decline_code="invalid_token", charge_id=None)
    _raise_for_status(status_code, body, idempotency_key=idempotency_key)


def _found_charge(status_code: int, body: Any) -> ChargeResult | None:
    if status_code != 200:
        _raise_for_status(status_code, body, idempotency_key=None)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderUnavailable(reason="invalid_response")
    return _parse_charge(data[0]) if data else None


def _refund_outcome(
    status_code: int, body: Any, *, charge_id: str, idempotency_key: str
) -> RefundResult:
    if status_code in (200, 201):
        return _parse_refund(body)
    if status_code in (400, 404):
        raise RefundRefused(charge_id=charge_id, status_code=status_code, error=_error_code(body))
    _raise_for_status(status_code, body, idempotency_key=idempotency_key)


def _lifecycle_outcome(
    status_code: int,
    body: Any,
    *,
    charge_id: str,
    idempotency_key: str,
    refused: type[CaptureRefused] | type[VoidRefused],
) -> ChargeResult:
    if status_code in (200, 201):
        return _parse_charge(body)
    if status_code in (400, 404):
        raise refused(charge_id=charge_id, status_code=status_code, error=_error_code(body))
    _raise_for_status(status_code, body, idempotency_key=idempotency_key)


# --- Over HTTP ------------------------------------------------------------------------------

_client: httpx.Client | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def _http_client() -> httpx.Client:
    """The process's one httpx client (connection pool), created on first use.

    A client inherited through fork (Celery's prefork pool, gunicorn) shares its sockets
    with the parent, so a new process gets its own and leaves the inherited one alone.
    """
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = httpx.Client(
                # The provider is found by name through settings; an HTTP(S)_PROXY from the
                # environment would silently reroute it and stretch its timeouts.
                trust_env=False,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
                headers={"Accept": "application/json", "User-Agent": "ecommerce-payments"},
            )
            _client_pid = os.getpid()
        return _client


class HttpPaymentGateway:
    """The provider (or the sandbox process) over HTTP, with connect and read timeouts.

    A read timeout is ProviderUnavailable like any transient failure, although the charge
    may have happened: the caller retries with the same key or calls `find_charge`.
    """

    def __init__(
        self, base_url: str, *, connect_timeout_seconds: float, read_timeout_seconds: float
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"The payment provider URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(
            connect=connect_timeout_seconds,
            read=read_timeout_seconds,
            write=read_timeout_seconds,
            pool=connect_timeout_seconds,
        )

    def charge(
        self,
        *,
        amount: Decimal,
        currency: str,
        token: str,
        idempotency_key: str,
        capture: bool = True,
    ) -> ChargeResult:
        status_code, body = self._send(
            "POST",
            "/v1/charges",
            json=_charge_request(amount=amount, currency=currency, token=token, capture=capture),
            idempotency_key=idempotency_key,
        )
        return _charge_outcome(status_code, body, idempotency_key=idempotency_key)

    def capture(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        status_code, body = self._send(
            "POST",
            f"/v1/charges/{charge_id}/capture",
            json=_capture_request(amount=amount),
            idempotency_key=idempotency_key,
        )
        return _lifecycle_outcome(
            status_code,
            body,
            charge_id=charge_id,
            idempotency_key=idempotency_key,
            refused=CaptureRefused,
        )

    def void(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        status_code, body = self._send(
            "POST", f"/v1/charges/{charge_id}/void", json={}, idempotency_key=idempotency_key
        )
        return _lifecycle_outcome(
            status_code,
            body,
            charge_id=charge_id,
            idempotency_key=idempotency_key,
            refused=VoidRefused,
        )

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        status_code, body = self._send(
            "GET", "/v1/charges", params={"idempotency_key": idempotency_key}
        )
        return _found_charge(status_code, body)

    def refund(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        status_code, body = self._send(
            "POST",
            "/v1/refunds",
            json=_refund_request(charge_id=charge_id, amount=amount),
            idempotency_key=idempotency_key,
        )
        return _refund_outcome(
            status_code, body, charge_id=charge_id, idempotency_key=idempotency_key
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return its status and JSON body (None when not JSON).

        Raises ProviderUnavailable when no answer arrives.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        log = logger.bind(method=method, path=path, idempotency_key=idempotency_key)
        started = time.monotonic()
        try:
            response = _http_client().request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            reason = {
                httpx.ConnectTimeout: "connect_timeout",
                httpx.ReadTimeout: "read_timeout",
                httpx.WriteTimeout: "write_timeout",
                httpx.PoolTimeout: "pool_timeout",
            }.get(type(exc), "timeout")
            log.warning("payment_provider.unavailable", reason=reason, error=str(exc))
            raise ProviderUnavailable(reason=reason) from exc
        except httpx.TransportError as exc:
            reason = "connect_error" if isinstance(exc, httpx.ConnectError) else "connection_error"
            log.warning("payment_provider.unavailable", reason=reason, error=str(exc))
            raise ProviderUnavailable(reason=reason) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        log.info(
            "payment_provider.response",
            status=response.status_code,
            replayed=response.headers.get("Idempotent-Replayed") == "true",
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response.status_code, body


# --- In-process (embedded mode) ---------------------------------------------------------

_sandbox: SandboxProvider | None = None
_sandbox_lock = threading.Lock()


def shared_sandbox() -> SandboxProvider:
    """The process's sandbox over PAYMENT_SANDBOX_DB, so every call sees the same keys.

    Opened on first use, after gunicorn or Celery forked: each process gets its own
    connection to the one file, as the embedded span store does.
    """
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            path = settings.PAYMENT_SANDBOX_DB
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            _sandbox = SandboxProvider(path)
        return _sandbox


class InProcessSandboxGateway:
    """The sandbox's logic called directly, no HTTP: embedded mode.

    Same rules and answers as the sandbox process. Its charges, refunds and keys live in
    PAYMENT_SANDBOX_DB, shared by the local processes (several gunicorn workers see one
    another's charges); fault injection settings stay per process.
    """

    def __init__(self, provider: SandboxProvider | None = None) -> None:
        self.provider = provider if provider is not None else shared_sandbox()

    def charge(
        self,
        *,
        amount: Decimal,
        currency: str,
        token: str,
        idempotency_key: str,
        capture: bool = True,
    ) -> ChargeResult:
        response = self.provider.create_charge(
            body=_charge_request(amount=amount, currency=currency, token=token, capture=capture),
            idempotency_key=idempotency_key,
            base_url=settings.PAYMENT_SANDBOX_ACTION_BASE_URL,
        )
        return _charge_outcome(response.status, response.body, idempotency_key=idempotency_key)

    def capture(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        response = self.provider.capture_charge(
            charge_id=charge_id,
            body=_capture_request(amount=amount),
            idempotency_key=idempotency_key,
        )
        return _lifecycle_outcome(
            response.status,
            response.body,
            charge_id=charge_id,
            idempotency_key=idempotency_key,
            refused=CaptureRefused,
        )

    def void(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        response = self.provider.void_charge(charge_id=charge_id, idempotency_key=idempotency_key)
        return _lifecycle_outcome(
            response.status,
            response.body,
            charge_id=charge_id,
            idempotency_key=idempotency_key,
            refused=VoidRefused,
        )

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        response = self.provider.list_charges(idempotency_key=idempotency_key)
        return _found_charge(response.status, response.body)

    def refund(self, *, charge_id: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        response = self.provider.create_refund(
            body=_refund_request(charge_id=charge_id, amount=amount),
            idempotency_key=idempotency_key,
        )
        return _refund_outcome(
            response.status, response.body, charge_id=charge_id, idempotency_key=idempotency_key
        )


def get_gateway() -> PaymentGateway:
    """The adapter the settings select: HTTP when PAYMENT_PROVIDER_URL is set, else in-process."""
    if settings.PAYMENT_PROVIDER_URL:
        return HttpPaymentGateway(
            settings.PAYMENT_PROVIDER_URL,
            connect_timeout_seconds=settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_SECONDS,
            read_timeout_seconds=settings.PAYMENT_PROVIDER_READ_TIMEOUT_SECONDS,
        )
    return InProcessSandboxGateway()
