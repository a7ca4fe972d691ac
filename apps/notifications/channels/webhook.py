"""Webhooks: a signed JSON POST to the endpoint, sent to the very address the SSRF guard checked.

The body is `{"id", "event", "created", "data"}`. Two signatures, one per convention
(docs/webhooks.md shows receivers verifying each):
- Standard Webhooks (https://www.standardwebhooks.com/): `webhook-id`, `webhook-timestamp`
  and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the
  base64-decoded part of the secret after `whsec_`; while a rotated-out secret still
  overlaps, its signature follows, space-separated. The libraries verify it unchanged.
- Ours, kept for existing receivers: `X-Webhook-Signature: v1=<hex>`, HMAC-SHA256 keyed
  with the whole current secret (UTF-8) over `<X-Webhook-Timestamp>.<body>`.

The request goes to an address the guard resolved and approved, with the Host header and
TLS SNI (and so certificate checks) naming the URL's host: no second DNS lookup happens.
Redirects are never followed: a 3xx is a refusal. Each destination host has its own
circuit breaker (`webhook:<host>`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import ssl
import time
from typing import TYPE_CHECKING

import httpx
from django.conf import settings
from django.utils import timezone

from apps.notifications.exceptions import DeliveryRefused, DeliveryUnavailable
from ecommerce.resilience.breaker import NAME_PATTERN, breaker
from ecommerce.ssrf import Destination, UnresolvableHost, UnsafeDestination, resolve_destination

if TYPE_CHECKING:
    from apps.notifications.models import Notification

ID_HEADER = "X-Webhook-Id"
EVENT_HEADER = "X-Webhook-Event"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
SIGNATURE_VERSION = "v1"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
USER_AGENT = "ecommerce-webhooks/1"
# Enough of a refusal's body to explain it in last_error; the rest is never read.
RESPONSE_PREFIX_BYTES = 512
RETRYABLE_STATUSES = frozenset({408, 429})


def webhook_body(notification: Notification) -> bytes:
    """The exact bytes sent and signed: compact JSON with sorted keys."""
    payload = {
        "id": str(notification.public_id),
        "event": notification.event,
        "created": notification.created_at.isoformat().replace("+00:00", "Z"),
        "data": notification.context,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: `v1=` and the hex HMAC-SHA256 of `timestamp.body`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def standard_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret, decoded as the Standard Webhooks libraries
    decode it. Secrets made before the standard format (URL-safe base64 without padding)
    are decoded as URL-safe base64: verifying those needs the key re-encoded (rotating the
    secret gives a standard one)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(padded)


def standard_signature(*, secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,<base64>` per secret, space-separated, current first."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(standard_key(secret), signed, "sha256")).decode()
        for secret in secrets
    )


def breaker_name(host: str) -> str:
    """`webhook:<host>`, or a digest of the host when that is not a valid breaker name."""
    name = f"webhook:{host}"
    if NAME_PATTERN.fullmatch(name):
        return name
    return f"webhook:{hashlib.sha256(host.encode()).hexdigest()[:32]}"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context, built once per process (each build reads the
    CA bundle: tens of milliseconds)."""
    return httpx.create_ssl_context()


def _timeout() -> httpx.Timeout:
    connect = settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS
    read = settings.WEBHOOK_READ_TIMEOUT_SECONDS
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _read_prefix(response: httpx.Response) -> str:
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= RESPONSE_PREFIX_BYTES:
            break
    return data[:RESPONSE_PREFIX_BYTES].decode("utf-8", "replace").strip()


def _post(destination: Destination, url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST to the checked addresses in turn (the next only when one refuses to connect).

    Raises DeliveryUnavailable or DeliveryRefused from the answer, or its absence.
    """
    original = httpx.URL(url)
    # As the URL names it (port included when given): what the receiver's vhost expects.
    headers = {**headers, "Host": original.netloc.decode("ascii")}
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    # One client per delivery: a pooled connection made for one host name must never
    # carry a request for another name that resolved to the same address.
    with httpx.Client(
        timeout=_timeout(), follow_redirects=False, trust_env=False, verify=_ssl_context()
    ) as client:
        refused: list[str] = []
        for address in destination.addresses:
            request = client.build_request(
                "POST",
                original.copy_with(host=address),
                content=body,
                headers=headers,
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                refused.append(f"{address}: {exc}")
                continue
            except httpx.TimeoutException as exc:
                reason = {
                    httpx.ConnectTimeout: "connect_timeout",
                    httpx.ReadTimeout: "read_timeout",
                    httpx.WriteTimeout: "write_timeout",
                }.get(type(exc), "timeout")
                raise DeliveryUnavailable(reason=reason, detail=f"{reason} at {address}") from exc
            except httpx.TransportError as exc:
                raise DeliveryUnavailable(
                    reason="connection_error", detail=f"{type(exc).__name__}: {exc}"
                ) from exc
            try:
                _judge(response)
            finally:
                response.close()
            return
        raise DeliveryUnavailable(
            reason="connect_error", detail="Could not connect: " + "; ".join(refused)
        )


def _judge(response: httpx.Response) -> None:
    """Return on 2xx; raise DeliveryUnavailable (5xx, 408, 429) or DeliveryRefused (the rest)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise DeliveryRefused(
            reason=f"redirect_{status}",
            detail=f"HTTP {status} to {location!r} refused: webhooks never follow redirects.",
        )
    try:
        snippet = _read_prefix(response)
    except httpx.HTTPError:
        snippet = ""
    detail = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise DeliveryUnavailable(
            reason=f"http_{status}", detail=detail, retry_after_seconds=_retry_after(response)
        )
    raise DeliveryRefused(reason=f"http_{status}", detail=detail)


def signed_headers(
    notification: Notification, *, secrets: list[str], body: bytes
) -> dict[str, str]:
    """Headers of one attempt; the timestamp is fresh, so a retry passes a replay window.

    `secrets` are the endpoint's signing secrets, current first: all sign the standard
    header, the current one alone signs ours (its receivers compare one signature).
    """
    timestamp = int(time.time())
    message_id = str(notification.public_id)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        STANDARD_ID_HEADER: message_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(
            secrets=secrets, message_id=message_id, timestamp=timestamp, body=body
        ),
        ID_HEADER: message_id,
        EVENT_HEADER: notification.event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret=secrets[0], timestamp=timestamp, body=body),
    }


def send_webhook(notification: Notification) -> None:
    """POST the notification to its endpoint, signed with the endpoint's current secret.

    Raises DeliveryRefused (unsafe destination, 3xx, 4xx but 408 and 429),
    DeliveryUnavailable (DNS failure, connect or read failure, 5xx, 408, 429) and
    CircuitOpen (the host's breaker is open: nothing was sent).
    """
    endpoint = notification.endpoint
    if endpoint is None:
        raise DeliveryRefused(reason="no_endpoint", detail="The webhook endpoint is gone.")
    try:
        destination = resolve_destination(endpoint.url, allowed=settings.WEBHOOK_ALLOWED_HOSTS)
    except UnsafeDestination as exc:
        raise DeliveryRefused(reason="unsafe_destination", detail=exc.detail) from exc
    except UnresolvableHost as exc:
        raise DeliveryUnavailable(reason="dns_error", detail=exc.detail) from exc
    body = webhook_body(notification)
    headers = signed_headers(
        notification, secrets=endpoint.signing_secrets(timezone.now()), body=body
    )
    with breaker(breaker_name(destination.host)).guard(transient=(DeliveryUnavailable,)):
        _post(destination, endpoint.url, body, headers)
