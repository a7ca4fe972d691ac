"""The sandbox provider's logic and storage: test tokens, charges, refunds, keys, faults.

Used by the HTTP server (`server.py`) and directly by the in-process gateway, so both give
the same answers. See the package docstring for the rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.payments.sandbox.webhooks import Destination, WebhookSender

# Public test tokens, documented like a real provider's test mode: not secrets.
SUCCESS_TOKEN = "tok_success"  # noqa: S105
PROCESSING_ERROR_TOKEN = "tok_processing_error"  # noqa: S105
DECLINE_CODES: dict[str, str] = {
    "tok_card_declined": "card_declined",
    "tok_insufficient_funds": "insufficient_funds",
}
# ISO 4217 currencies without minor units (Stripe's list); every other currency has two.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
MAX_AMOUNT = Decimal("99999999.99")

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    decline_code TEXT,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    charge_id TEXT NOT NULL REFERENCES charges (id),
    status TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class SandboxResponse:
    """What the provider answers: a status, a JSON body, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


class Refused(Exception):
    """A request the sandbox refuses before touching any data."""

    def __init__(self, status: int, error: str, message: str = "") -> None:
        super().__init__(error)
        self.response = SandboxResponse(status, {"error": error, "message": message or error})


def _default_webhook_secret() -> str:
    return os.environ.get("PAYMENT_WEBHOOK_SECRET", "")


@dataclass
class FaultConfig:
    latency_ms: int = 0
    failure_rate: float = 0.0
    respond_after_commit_delay_ms: int = 0
    seed: int | None = None
    # Event webhooks (see webhooks.py): none are made without a URL.
    webhook_url: str | None = None
    webhook_secret: str = field(default_factory=_default_webhook_secret)
    webhook_delay_seconds: float = 0.0
    webhook_duplicate: bool = False
    webhook_reorder: bool = False
    webhook_drop: bool = False
    webhook_max_attempts: int = 5

    def destination(self) -> Destination | None:
        """Where events go now, or None when no webhook URL is set."""
        if not self.webhook_url:
            return None
        return Destination(
            url=self.webhook_url,
            secret=self.webhook_secret,
            delay_seconds=self.webhook_delay_seconds,
            duplicate=self.webhook_duplicate,
            reorder=self.webhook_reorder,
            max_attempts=self.webhook_max_attempts,
        )

    def shown(self) -> dict[str, Any]:
        """The config as `GET /_sandbox/config` shows it: the secret only as set or not."""
        values = asdict(self)
        values["webhook_secret"] = "***" if self.webhook_secret else ""
        return values

    def updated(self, changes: Any) -> FaultConfig:
        """Return a copy with `changes` applied. Raises Refused on an unknown or bad value."""
        if not isinstance(changes, dict):
            raise Refused(400, "invalid_config", "Send a JSON object.")
        values = asdict(self)
        for name, value in changes.items():
            if name not in values:
                raise Refused(400, "invalid_config", f"Unknown setting {name!r}.")
            if name.startswith("webhook_"):
                if not _valid_webhook_setting(name, value):
                    raise Refused(400, "invalid_config", f"Invalid value for {name!r}.")
                values[name] = float(value) if name == "webhook_delay_seconds" else value
                continue
            if isinstance(value, bool) or not (
                (name == "failure_rate" and isinstance(value, int | float) and 0 <= value <= 1)
                or (name == "seed" and (value is None or isinstance(value, int)))
                or (name.endswith("_ms") and isinstance(value, int) and 0 <= value <= 600_000)
            ):
                raise Refused(400, "invalid_config", f"Invalid value for {name!r}.")
            values[name] = value
        values["failure_rate"] = float(values["failure_rate"])
        return FaultConfig(**values)


def _valid_webhook_setting(name: str, value: Any) -> bool:
    if name == "webhook_url":
        return value is None or (
            isinstance(value, str)
            and len(value) <= 2048
            and value.startswith(("http://", "https://"))
        )
    if name == "webhook_secret":
        return isinstance(value, str) and len(value) <= 255
    if name == "webhook_delay_seconds":
        return not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 600
    if name == "webhook_max_attempts":
        return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= 20
    return isinstance(value, bool)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require_key(idempotency_key: str | None) -> str:
    if not idempotency_key or len(idempotency_key) > 255:
        raise Refused(400, "idempotency_key_required", "Send an Idempotency-Key header.")
    return idempotency_key


def _parse_decimal(value: Any) -> Decimal:
    """Parse a positive amount sent as a decimal string (or an integer, never a float)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Refused(400, "invalid_amount", "Send the amount as a decimal string.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Refused(400, "invalid_amount", "The amount is not a number.") from None
    if not amount.is_finite() or not 0 < amount <= MAX_AMOUNT:
        raise Refused(
            400, "invalid_amount", f"The amount must be above 0 and at most {MAX_AMOUNT}."
        )
    return amount


def _parse_amount(value: Any, currency: str) -> Decimal:
    """Parse a positive amount exact to the currency's places, quantised to them."""
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    amount = _parse_decimal(value)
    quantised = amount.quantize(Decimal(1).scaleb(-places))
    if quantised != amount:
        raise Refused(400, "invalid_amount", f"{currency} amounts have {places} decimal places.")
    return quantised


def _parse_currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise Refused(400, "invalid_currency", "Send a three-letter ISO 4217 currency code.")
    return value.upper()


def _fingerprint(path: str, params: dict[str, str]) -> str:
    canonical = json.dumps([path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _decimal_text(amount: Decimal) -> str:
    """One spelling per value ("12.3" and "12.30" alike) so fingerprints compare values."""
    return format(amount.normalize(), "f")


class SandboxProvider:
    """The provider's logic over one SQLite connection; every operation is thread-safe.

    One lock serialises use of the connection (a `:memory:` database exists only inside
    its connection). Writes run in `BEGIN IMMEDIATE` transactions, so several processes
    sharing a `--db` file serialise too, and the UNIQUE key columns are the guarantee.
    """

    def __init__(self, db_path: str = ":memory:") -> None:
        self.db_path = db_path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            db_path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        if db_path != ":memory:":
            # WAL: readers never wait for the writer (several processes share the file).
            # NORMAL: a commit waits for no fsync; a sandbox's data may lose its last commits
            # to a power cut, never its consistency.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._config_lock = threading.Lock()
        self._config = FaultConfig()
        self._generation = 0
        # Fault injection only, never security: a seedable generator is the point.
        self._random = random.Random()  # noqa: S311
        self.webhooks = WebhookSender()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- Charges ------------------------------------------------------------------------

    def create_charge(self, *, body: Any, idempotency_key: str | None) -> SandboxResponse:
        """Charge a test token once per idempotency key; see the module docstring."""
        try:
            self._delay_request()
            if self._roll_failure():
                raise Refused(503, "service_unavailable", "Injected failure.")
            key = _require_key(idempotency_key)
            if not isinstance(body, dict):
                raise Refused(400, "invalid_request", "Send a JSON object.")
            currency = _parse_currency(body.get("currency"))
            amount = _parse_amount(body.get("amount"), currency)
            token = body.get("token")
            if not isinstance(token, str):
                raise Refused(400, "invalid_token", "Send a test token.")
            params = {"amount": _decimal_text(amount), "currency": currency, "token": token}
            fingerprint = _fingerprint("/v1/charges", params)
            with self._write() as db:
                stored = self._replay(db, key, fingerprint)
                if stored is not None:
                    return stored
                if token == PROCESSING_ERROR_TOKEN:
                    raise Refused(500, "processing_error", "The test processor failed.")
                if token != SUCCESS_TOKEN and token not in DECLINE_CODES:
                    raise Refused(400, "invalid_token", "Unknown test token.")
                charge = {
                    "id": f"ch_{secrets.token_hex(12)}",
                    "object": "charge",
                    "status": "succeeded" if token == SUCCESS_TOKEN else "declined",
                    "amount": str(amount),
                    "currency": currency,
                    "decline_code": DECLINE_CODES.get(token),
                    "amount_refunded": str(Decimal(0).quantize(amount)),
                    "idempotency_key": key,
                    "created": _now(),
                }
                db.execute(
                    "INSERT INTO charges (id, idempotency_key, status, amount, currency,"
                    " decline_code, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [charge[f] for f in ("id", "idempotency_key", "status", "amount")]
                    + [charge[f] for f in ("currency", "decline_code", "created")],
                )
                response = SandboxResponse(201 if charge["status"] == "succeeded" else 402, charge)
                self._store(db, key, fingerprint, response)
        except Refused as refused:
            return refused.response
        except sqlite3.IntegrityError:
            # Another process sharing the file stored this key first: answer as it did.
            return self._replay_after_race(key, fingerprint)
        # The event leaves from its own thread; the answer may still be delayed below, so a
        # webhook can arrive before the answer (respond_after_commit_delay_ms).
        succeeded = response.body["status"] == "succeeded"
        self._emit("charge.succeeded" if succeeded else "charge.failed", response.body)
        self._sleep_ms(self._config_value("respond_after_commit_delay_ms"))
        return response

    def get_charge(self, *, charge_id: str) -> SandboxResponse:
        self._delay_read()
        with self._read() as db:
            row = db.execute("SELECT * FROM charges WHERE id = ?", [charge_id]).fetchone()
            if row is None:
                return Refused(404, "charge_not_found", "No such charge.").response
            return SandboxResponse(200, self._charge_body(db, row))

    def list_charges(self, *, idempotency_key: str | None) -> SandboxResponse:
        """Charges made under `idempotency_key` (zero or one), or the latest hundred."""
        self._delay_read()
        with self._read() as db:
            if idempotency_key is None:
                rows = db.execute("SELECT * FROM charges ORDER BY created DESC LIMIT 100")
            else:
                rows = db.execute(
                    "SELECT * FROM charges WHERE idempotency_key = ?", [idempotency_key]
                )
            return SandboxResponse(200, {"data": [self._charge_body(db, r) for r in rows]})

    # --- Refunds ------------------------------------------------------------------------

    def create_refund(self, *, body: Any, idempotency_key: str | None) -> SandboxResponse:
        """Refund part or all of a succeeded charge, once per idempotency key."""
        try:
            self._delay_request()
            key = _require_key(idempotency_key)
            if not isinstance(body, dict) or not isinstance(body.get("charge"), str):
                raise Refused(400, "invalid_request", "Send {'charge': id, 'amount': ...}.")
            charge_id: str = body["charge"]
            requested = body.get("amount")  # absent: all that is left to refund
            # Syntax only here: the places allowed depend on the charge's currency.
            spelled = "" if requested is None else _decimal_text(_parse_decimal(requested))
            params = {"charge": charge_id, "amount": spelled}
            fingerprint = _fingerprint("/v1/refunds", params)
            with self._write() as db:
                stored = self._replay(db, key, fingerprint)
                if stored is not None:
                    return stored
                row = db.execute("SELECT * FROM charges WHERE id = ?", [charge_id]).fetchone()
                if row is None:
                    raise Refused(404, "charge_not_found", "No such charge.")
                if row["status"] != "succeeded":
                    raise Refused(400, "charge_not_refundable", "Only succeeded charges refund.")
                refundable = Decimal(row["amount"]) - self._refunded(db, charge_id)
                amount = (
                    refundable if requested is None else _parse_amount(requested, row["currency"])
                )
                if amount > refundable or amount <= 0:
                    raise Refused(400, "amount_exceeds_refundable", f"At most {refundable}.")
                refund = {
                    "id": f"re_{secrets.token_hex(12)}",
                    "object": "refund",
                    "status": "succeeded",
                    "charge": charge_id,
                    "amount": str(amount),
                    "currency": row["currency"],
                    "idempotency_key": key,
                    "created": _now(),
                }
                db.execute(
                    "INSERT INTO refunds (id, idempotency_key, charge_id, status, amount,"
                    " currency, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [refund[f] for f in ("id", "idempotency_key", "charge", "status")]
                    + [refund[f] for f in ("amount", "currency", "created")],
                )
                response = SandboxResponse(201, refund)
                self._store(db, key, fingerprint, response)
                charge_key = row["idempotency_key"]
        except Refused as refused:
            return refused.response
        except sqlite3.IntegrityError:
            return self._replay_after_race(key, fingerprint)
        self._emit("refund.succeeded", {**refund, "charge_idempotency_key": charge_key})
        return response

    # --- Sandbox controls ---------------------------------------------------------------

    def get_config(self) -> SandboxResponse:
        with self._config_lock:
            return SandboxResponse(200, self._config.shown())

    def update_config(self, *, body: Any) -> SandboxResponse:
        try:
            with self._config_lock:
                self._config = self._config.updated(body)
                if isinstance(body, dict) and "seed" in body:
                    self._random.seed(self._config.seed)
                return SandboxResponse(200, self._config.shown())
        except Refused as refused:
            return refused.response

    def reset(self) -> SandboxResponse:
        """Wipe every charge, refund and key, and restore the default config."""
        with self._write() as db:
            db.execute("DELETE FROM refunds")
            db.execute("DELETE FROM charges")
            db.execute("DELETE FROM idempotency_keys")
        with self._config_lock:
            self._config = FaultConfig()
            self._random.seed(None)
            self._generation += 1
        self.webhooks.reset()
        return SandboxResponse(200, {"reset": True})

    def stats(self) -> SandboxResponse:
        """Counts of charges and refunds by status, for tests asserting "exactly one"."""
        with self._read() as db:
            charges: dict[str, int] = {"succeeded": 0, "declined": 0}
            for status, count in db.execute("SELECT status, COUNT(*) FROM charges GROUP BY status"):
                charges[status] = count
            refunds = db.execute("SELECT COUNT(*) FROM refunds").fetchone()[0]
        charges["total"] = sum(charges.values())
        return SandboxResponse(
            200,
            {
                "charges": charges,
                "refunds": {"succeeded": refunds},
                "webhooks": self.webhooks.stats(),
            },
        )

    # --- Internals ----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction, committed unless an exception leaves it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _replay(self, db: sqlite3.Connection, key: str, fingerprint: str) -> SandboxResponse | None:
        row = db.execute("SELECT * FROM idempotency_keys WHERE key = ?", [key]).fetchone()
        if row is None:
            return None
        if row["fingerprint"] != fingerprint:
            raise Refused(409, "idempotency_key_reused", "Key already used for another request.")
        body = json.loads(row["response_body"])
        return SandboxResponse(row["response_status"], body, replayed=True)

    def _replay_after_race(self, key: str, fingerprint: str) -> SandboxResponse:
        try:
            with self._read() as db:
                stored = self._replay(db, key, fingerprint)
        except Refused as refused:
            return refused.response
        # A UNIQUE violation with no stored key means the file was edited by hand.
        return stored or Refused(500, "internal_error", "Key taken but not stored.").response

    @staticmethod
    def _store(
        db: sqlite3.Connection, key: str, fingerprint: str, response: SandboxResponse
    ) -> None:
        db.execute(
            "INSERT INTO idempotency_keys (key, fingerprint, response_status, response_body,"
            " created) VALUES (?, ?, ?, ?, ?)",
            [key, fingerprint, response.status, json.dumps(response.body), _now()],
        )

    @staticmethod
    def _refunded(db: sqlite3.Connection, charge_id: str) -> Decimal:
        rows = db.execute("SELECT amount FROM refunds WHERE charge_id = ?", [charge_id])
        return sum((Decimal(amount) for (amount,) in rows), Decimal(0))

    def _charge_body(self, db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        amount = Decimal(row["amount"])
        return {
            "id": row["id"],
            "object": "charge",
            "status": row["status"],
            "amount": row["amount"],
            "currency": row["currency"],
            "decline_code": row["decline_code"],
            "amount_refunded": str(self._refunded(db, row["id"]).quantize(amount)),
            "idempotency_key": row["idempotency_key"],
            "created": row["created"],
        }

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        """Queue the event of a new charge or refund for the webhook URL, if one is set."""
        with self._config_lock:
            destination = self._config.destination()
            drop = self._config.webhook_drop
        if destination is not None and drop:
            self.webhooks.drop()
            return
        self.webhooks.emit(event_type, obj, destination)

    def _config_value(self, name: str) -> Any:
        with self._config_lock:
            return getattr(self._config, name)

    @staticmethod
    def _sleep_ms(milliseconds: int) -> None:
        if milliseconds > 0:
            time.sleep(milliseconds / 1000)

    def _delay_request(self) -> None:
        """Sleep `latency_ms`. Raises Refused (503) when a reset happened meanwhile."""
        with self._config_lock:
            latency_ms, generation = self._config.latency_ms, self._generation
        self._sleep_ms(latency_ms)
        with self._config_lock:
            if generation != self._generation:
                raise Refused(503, "sandbox_reset", "The sandbox was reset meanwhile.")

    def _delay_read(self) -> None:
        # Reads act on whatever the data is after the sleep, so a reset does not matter.
        self._sleep_ms(self._config_value("latency_ms"))

    def _roll_failure(self) -> bool:
        with self._config_lock:
            rate = self._config.failure_rate
            return rate > 0 and self._random.random() < rate
