"""Typed errors of payments: what the gateway raises when the provider refuses or fails.

Retryable (`ProviderUnavailable`) and terminal (the rest) are apart, so a task retries only
what can recover (STYLE.md R5, R9).
"""

from __future__ import annotations

from ecommerce.errors import Conflict, InvalidInput, NotFound, Unavailable, Unprocessable


class ProviderUnavailable(Unavailable):
    """The provider could not be reached or answered with a transient failure.

    Connection errors, timeouts, 5xx, 408 and 429, and answers too garbled to read. After a
    read timeout the charge may or may not have happened: retry with the same idempotency
    key (which never charges twice) or look the charge up by that key first. `reason` is
    short and low-cardinality (`read_timeout`, `connect_error`, `http_503`) so it can label
    a metric or a breaker failure.
    """

    code = "payment_provider_unavailable"
    title = "Payment provider unavailable"

    def __init__(self, *, reason: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"The payment provider is unavailable ({reason}).", reason=reason
        )
        self.reason = reason


class PaymentDeclined(InvalidInput):
    """The provider refused the payment method: terminal for this token, never retried.

    InvalidInput rather than Conflict: the remedy lies in what the client sent (another card
    or token), not in waiting or in the state of one of our resources, which is what a 409
    means here (illegal transition, stock, idempotency). An unknown token is a decline too
    (`decline_code="invalid_token"`, no charge made), as the order cannot be paid with it.
    `charge_id` names the provider's declined charge when one was recorded; it stays out
    of `extra`, which reaches API clients.
    """

    code = "payment_declined"
    title = "Payment declined"

    def __init__(self, *, decline_code: str, charge_id: str | None) -> None:
        super().__init__(f"The payment was declined ({decline_code}).", decline_code=decline_code)
        self.decline_code = decline_code
        self.charge_id = charge_id


class IdempotencyConflict(Unprocessable):
    """The provider already saw this idempotency key with a different request (its 409).

    Unprocessable, as `ecommerce.errors` files reused keys: sending it again can never
    succeed. It means our side derived one key for two different requests: a bug to fix,
    not a state to wait out.
    """

    code = "payment_idempotency_conflict"
    title = "Idempotency key reused with another request"

    def __init__(self, *, idempotency_key: str) -> None:
        super().__init__("The payment provider saw this idempotency key with another request.")
        self.idempotency_key = idempotency_key


class ProviderRejected(InvalidInput):
    """The provider refused the request as sent (a 4xx other than the above); never retried."""

    code = "payment_provider_rejected"
    title = "Payment provider rejected the request"

    def __init__(self, *, status_code: int, error: str, detail: str | None = None) -> None:
        super().__init__(detail or f"The payment provider rejected the request ({error}).")
        self.status_code = status_code
        self.error = error


class RefundRefused(ProviderRejected):
    """The provider will not refund: unknown or declined charge, or more than is left."""

    code = "refund_refused"
    title = "Refund refused"

    def __init__(self, *, charge_id: str, status_code: int, error: str) -> None:
        super().__init__(
            status_code=status_code,
            error=error,
            detail=f"The payment provider refused the refund ({error}).",
        )
        self.charge_id = charge_id


class CaptureRefused(ProviderRejected):
    """The provider will never capture this charge: captured already, voided, declined, or
    its authorization expired (`charge_expired_for_capture`)."""

    code = "capture_refused"

    def __init__(self, *, charge_id: str, status_code: int, error: str) -> None:
        super().__init__(status_code=status_code, error=error)
        self.charge_id = charge_id


class VoidRefused(ProviderRejected):
    """The provider will never void this charge: it was captured or declined."""

    code = "void_refused"

    def __init__(self, *, charge_id: str, status_code: int, error: str) -> None:
        super().__init__(status_code=status_code, error=error)
        self.charge_id = charge_id


class MoneyMovementConflict(Conflict):
    """A provider reference already recorded in the money ledger for another movement.

    The ledger records each provider movement once; a second record under the same
    reference with another payment, amount or currency means two movements were taken for
    one: a bug to investigate, never a row to overwrite (the ledger is append-only).
    """

    code = "money_movement_conflict"
    title = "Money movement recorded differently"

    def __init__(self, *, kind: str, provider_reference: str) -> None:
        super().__init__(f"The {kind} {provider_reference} is already recorded with other figures.")
        self.kind = kind
        self.provider_reference = provider_reference


class WebhookRefused(InvalidInput):
    """A provider webhook delivery we cannot trust or read: nothing was stored or applied.

    The provider sees a 400 and retries; a delivery that was forged or replayed late stays
    refused whatever it tries.
    """

    code = "webhook_refused"
    title = "Webhook refused"


class WebhookSignatureInvalid(WebhookRefused):
    """The signature header is missing, malformed, or matches no signature of the body."""

    code = "webhook_signature_invalid"
    title = "Webhook signature invalid"


class WebhookTimestampOutOfTolerance(WebhookRefused):
    """The signed timestamp is older or further in the future than the tolerance: a replay
    of a captured delivery, or a clock gone wrong."""

    code = "webhook_timestamp_out_of_tolerance"
    title = "Webhook timestamp out of tolerance"


class WebhookPayloadInvalid(WebhookRefused):
    """A correctly signed body that is not an event we can read."""

    code = "webhook_payload_invalid"
    title = "Webhook payload invalid"


class WebhookProviderUnknown(NotFound):
    """No provider of that name sends us webhooks."""

    code = "webhook_provider_unknown"
    title = "Unknown webhook provider"

    def __init__(self, *, provider: str) -> None:
        super().__init__(f"No payment provider named {provider!r} sends webhooks here.")
        self.provider = provider


class ProviderEventDeferred(Unavailable):
    """An event that cannot be applied yet (a refund whose charge is not recorded yet):
    nothing is stored, so the provider's next delivery of it applies it."""

    code = "provider_event_deferred"
    title = "Provider event deferred"

    def __init__(self, *, event_id: str, reason: str) -> None:
        super().__init__(f"The event {event_id} cannot be applied yet ({reason}).", reason=reason)
        self.event_id = event_id
        self.reason = reason


class InvalidRefundAmount(InvalidInput):
    """A refund amount that is not a positive amount of the payment's currency."""

    code = "invalid_refund_amount"
    title = "Invalid refund amount"


class RefundExceedsRefundable(Conflict):
    """More than is left to refund: captures minus refunds, minus refunds still pending."""

    code = "refund_exceeds_refundable"
    title = "Refund exceeds what is refundable"

    def __init__(self, *, amount: str, refundable: str, currency: str) -> None:
        super().__init__(
            f"Cannot refund {amount} {currency}: at most {refundable} {currency} is left to "
            "refund (captured, less refunds made or pending).",
            amount=amount,
            refundable=refundable,
            currency=currency,
        )


class NothingToRefund(Conflict):
    """The order has no captured payment to refund."""

    code = "nothing_to_refund"
    title = "Nothing to refund"


class RefundRequestKeyReused(Unprocessable):
    """An Idempotency-Key already used for a refund of this order with another amount."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused"

    def __init__(self, *, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a refund with a different amount.",
            key=key,
        )


class RefundNotFound(NotFound):
    code = "refund_not_found"
    title = "Refund not found"


class ReturnRefundInProgress(Conflict):
    """A return already has a refund pending at the provider."""

    code = "return_refund_in_progress"
    title = "Return refund in progress"

    def __init__(self, *, return_id: str, refund_id: str) -> None:
        super().__init__(
            f"Return {return_id} already has refund {refund_id} pending or made.",
            return_id=return_id,
            refund_id=refund_id,
        )
