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
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.payments.sandbox.webhooks import Destination, WebhookSender

# Public test tokens, documented like a real provider's test mode: not secrets.
SUCCESS_TOKEN = "tok_success"  # noqa: S105
PROCESSING_ERROR_TOKEN = "tok_processing_error"  # noqa: S105
# The charge waits for the customer (3-D Secure): its `next_action` redirect page confirms or
# fails it, and `charge.action_completed` reports the end.
ACTION_REQUIRED_TOKEN = "tok_action_required"  # noqa: S105
AUTHENTICATION_FAILED = "authentication_failed"
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
# How long an uncaptured authorization can be captured (Stripe: 7 days); a sandbox control.
AUTHORIZATION_TTL_SECONDS = 7 * 24 * 3600
CHARGE_STATUSES = ("succeeded", "declined", "authorized", "action_required", "voided")

CHARGES_TABLE = """CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN
        ('succeeded', 'declined', 'authorized', 'action_required', 'voided')),
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    decline_code TEXT,
    created TEXT NOT NULL,
    -- What was asked: capture at once (1) or authorize only (0).
    capture INTEGER NOT NULL DEFAULT 1,
    amount_captured TEXT NOT NULL DEFAULT '0',
    next_action_url TEXT
);
"""
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
    + CHARGES_TABLE
    + """CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    charge_id TEXT NOT NULL REFERENCES charges (id),
    status TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    created TEXT NOT NULL
);
"""
)
# Files of the first release had charges that were only succeeded or declined: rebuilt
# with the new columns (SQLite cannot change a CHECK in place; its documented procedure:
# new table, copy, drop, rename), succeeded charges captured in full.
MIGRATE_CHARGES = (
    CHARGES_TABLE.replace("EXISTS charges", "EXISTS charges_new")
    + """
INSERT INTO charges_new (id, idempotency_key, status, amount, currency, decline_code, created,
    capture, amount_captured)
SELECT id, idempotency_key, status, amount, currency, decline_code, created, 1,
    CASE status WHEN 'succeeded' THEN amount ELSE '0' END FROM charges;
DROP TABLE charges;
ALTER TABLE charges_new RENAME TO charges;
"""
)


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
    # An authorization older than this can no longer be captured (charge_expired_for_capture).
    authorization_ttl_seconds: int = AUTHORIZATION_TTL_SECONDS

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
                or (
                    name == "authorization_ttl_seconds"
                    and isinstance(value, int)
                    and 0 <= value <= 30 * 24 * 3600
                )
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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(charges)")}
        if "capture" not in columns:
            self._db.executescript(f"BEGIN IMMEDIATE;{MIGRATE_CHARGES}COMMIT;")
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

    def create_charge(
        self, *, body: Any, idempotency_key: str | None, base_url: str = ""
    ) -> SandboxResponse:
        """Charge (or only authorize, `capture: false`) a test token once per idempotency
        key; see the package docstring. `base_url` is where this sandbox is reached, for the
        redirect URL of a charge that needs the customer's action."""
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
            capture = body.get("capture", True)
            if not isinstance(capture, bool):
                raise Refused(400, "invalid_request", "`capture` is true or false.")
            params = {"amount": _decimal_text(amount), "currency": currency, "token": token}
            if not capture:  # absent from the fingerprint when true: keys of old charges match
                params["capture"] = "false"
            fingerprint = _fingerprint("/v1/charges", params)
            with self._write() as db:
                stored = self._replay(db, key, fingerprint)
                if stored is not None:
                    return stored
                if token == PROCESSING_ERROR_TOKEN:
                    raise Refused(500, "processing_error", "The test processor failed.")
                known = (SUCCESS_TOKEN, ACTION_REQUIRED_TOKEN)
                if token not in known and token not in DECLINE_CODES:
                    raise Refused(400, "invalid_token", "Unknown test token.")
                charge_id = f"ch_{secrets.token_hex(12)}"
                status, captured, action_url = "declined", Decimal(0), None
                if token == SUCCESS_TOKEN:
                    status = "succeeded" if capture else "authorized"
                    captured = amount if capture else Decimal(0)
                elif token == ACTION_REQUIRED_TOKEN:
                    status = "action_required"
                    action_url = f"{base_url.rstrip('/')}/v1/charges/{charge_id}/action"
                db.execute(
                    "INSERT INTO charges (id, idempotency_key, status, amount, currency,"
                    " decline_code, created, capture, amount_captured, next_action_url)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        *(charge_id, key, status, str(amount), currency),
                        *(DECLINE_CODES.get(token), _now(), int(capture), str(captured)),
                        action_url,
                    ],
                )
                charge = self._charge_body(db, self._charge_row(db, charge_id))
                code = {"declined": 402, "action_required": 202}.get(status, 201)
                response = SandboxResponse(code, charge)
                self._store(db, key, fingerprint, response)
        except Refused as refused:
            return refused.response
        except sqlite3.IntegrityError:
            # Another process sharing the file stored this key first: answer as it did.
            return self._replay_after_race(key, fingerprint)
        # The event leaves from its own thread; the answer may still be delayed below, so a
        # webhook can arrive before the answer (respond_after_commit_delay_ms).
        event = {
            "succeeded": "charge.succeeded",
            "authorized": "charge.authorized",
            "declined": "charge.failed",
        }.get(response.body["status"])
        if event is not None:  # waiting for the customer is no event: the answer says it
            self._emit(event, response.body)
        self._sleep_ms(self._config_value("respond_after_commit_delay_ms"))
        return response

    def capture_charge(
        self, *, charge_id: str, body: Any, idempotency_key: str | None
    ) -> SandboxResponse:
        """Capture all or part (`amount`) of an authorized charge, once per key.

        Stripe's rule: one capture per authorization, and a partial capture releases the
        rest. An authorization older than `authorization_ttl_seconds` is 400
        `charge_expired_for_capture`; a charge not authorized 400 `charge_not_capturable`
        (`charge_already_captured` when it was captured), an unknown one 404.
        """
        try:
            self._delay_request()
            key = _require_key(idempotency_key)
            if not isinstance(body, dict):
                raise Refused(400, "invalid_request", "Send a JSON object.")
            requested = body.get("amount")  # absent: all of the authorization
            spelled = "" if requested is None else _decimal_text(_parse_decimal(requested))
            fingerprint = _fingerprint(f"/v1/charges/{charge_id}/capture", {"amount": spelled})
            with self._write() as db:
                stored = self._replay(db, key, fingerprint)
                if stored is not None:
                    return stored
                row = self._charge_row(db, charge_id)
                if row["status"] == "succeeded":
                    raise Refused(400, "charge_already_captured", "The charge is captured.")
                if row["status"] != "authorized":
                    raise Refused(400, "charge_not_capturable", f"The charge is {row['status']}.")
                created = datetime.fromisoformat(row["created"].replace("Z", "+00:00"))
                ttl = timedelta(seconds=self._config_value("authorization_ttl_seconds"))
                if datetime.now(UTC) > created + ttl:
                    raise Refused(
                        400, "charge_expired_for_capture", "The authorization has expired."
                    )
                authorized = Decimal(row["amount"])
                amount = (
                    authorized if requested is None else _parse_amount(requested, row["currency"])
                )
                if amount > authorized:
                    raise Refused(400, "amount_exceeds_authorized", f"At most {authorized}.")
                db.execute(
                    "UPDATE charges SET status = 'succeeded', amount_captured = ? WHERE id = ?",
                    [str(amount), charge_id],
                )
                response = self._charge_answer(db, charge_id)
                self._store(db, key, fingerprint, response)
        except Refused as refused:
            return refused.response
        except sqlite3.IntegrityError:
            return self._replay_after_race(key, fingerprint)
        self._emit("charge.captured", response.body)
        self._sleep_ms(self._config_value("respond_after_commit_delay_ms"))
        return response

    def void_charge(self, *, charge_id: str, idempotency_key: str | None) -> SandboxResponse:
        """Release an authorization (or a charge waiting for its customer), once per key.

        A voided charge answers 200 as it is (voiding is its own end); a captured or
        declined one is 400 `charge_not_voidable` (refund a captured charge), unknown 404.
        """
        try:
            self._delay_request()
            key = _require_key(idempotency_key)
            fingerprint = _fingerprint(f"/v1/charges/{charge_id}/void", {})
            with self._write() as db:
                stored = self._replay(db, key, fingerprint)
                if stored is not None:
                    return stored
                row = self._charge_row(db, charge_id)
                new = row["status"] in ("authorized", "action_required")
                if not new and row["status"] != "voided":
                    raise Refused(400, "charge_not_voidable", f"The charge is {row['status']}.")
                if new:
                    db.execute("UPDATE charges SET status = 'voided' WHERE id = ?", [charge_id])
                response = self._charge_answer(db, charge_id)
                self._store(db, key, fingerprint, response)
        except Refused as refused:
            return refused.response
        except sqlite3.IntegrityError:
            return self._replay_after_race(key, fingerprint)
        if new:
            self._emit("charge.voided", response.body)
            self._sleep_ms(self._config_value("respond_after_commit_delay_ms"))
        return response

    def complete_action(self, *, charge_id: str, outcome: Any) -> SandboxResponse:
        """The customer ends a charge's action on its redirect page: "confirm" or "fail".

        Confirmed, the charge is captured (or authorized when it was made with
        `capture: false`); failed, it is declined (`authentication_failed`). Either way
        `charge.action_completed` carries the charge as it now is. Completing it again the
        same way answers the charge as it is (a page reloaded); another way, or a charge
        not waiting (voided when its order expired), is 400 `action_not_pending`.
        """
        try:
            if outcome not in ("confirm", "fail"):
                raise Refused(400, "invalid_action", "Send action=confirm or action=fail.")
            with self._write() as db:
                row = self._charge_row(db, charge_id)
                if row["status"] != "action_required":
                    done = "declined" if outcome == "fail" else ("succeeded", "authorized")
                    if row["next_action_url"] and row["status"] in done:
                        return SandboxResponse(200, self._charge_body(db, row))
                    raise Refused(400, "action_not_pending", f"The charge is {row['status']}.")
                if outcome == "fail":
                    db.execute(
                        "UPDATE charges SET status = 'declined', decline_code = ? WHERE id = ?",
                        [AUTHENTICATION_FAILED, charge_id],
                    )
                elif row["capture"]:
                    db.execute(
                        "UPDATE charges SET status = 'succeeded', amount_captured = amount"
                        " WHERE id = ?",
                        [charge_id],
                    )
                else:
                    db.execute("UPDATE charges SET status = 'authorized' WHERE id = ?", [charge_id])
                response = self._charge_answer(db, charge_id)
        except Refused as refused:
            return refused.response
        self._emit("charge.action_completed", response.body)
        return response

    def get_charge(self, *, charge_id: str) -> SandboxResponse:
        self._delay_read()
        with self._read() as db:
            try:
                row = self._charge_row(db, charge_id)
            except Refused as refused:
                return refused.response
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
                    raise Refused(400, "charge_not_refundable", "Only captured charges refund.")
                refundable = Decimal(row["amount_captured"]) - self._refunded(db, charge_id)
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
            # The lifecycle's statuses show only once some charge has them.
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

    @staticmethod
    def _charge_row(db: sqlite3.Connection, charge_id: str) -> sqlite3.Row:
        """The charge's row. Raises Refused (404) when there is none."""
        row = db.execute("SELECT * FROM charges WHERE id = ?", [charge_id]).fetchone()
        if row is None:
            raise Refused(404, "charge_not_found", "No such charge.")
        return row

    def _charge_answer(self, db: sqlite3.Connection, charge_id: str) -> SandboxResponse:
        return SandboxResponse(200, self._charge_body(db, self._charge_row(db, charge_id)))

    def _charge_body(self, db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        amount = Decimal(row["amount"])
        status = row["status"]
        waiting = status == "action_required"
        return {
            "id": row["id"],
            "object": "charge",
            "status": status,
            "amount": row["amount"],
            "currency": row["currency"],
            "decline_code": row["decline_code"],
            "captured": status == "succeeded",
            "amount_captured": str(Decimal(row["amount_captured"]).quantize(amount)),
            "amount_refunded": str(self._refunded(db, row["id"]).quantize(amount)),
            "next_action": (
                {"type": "redirect", "url": row["next_action_url"]} if waiting else None
            ),
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
