"""Payments over HTTP: the endpoint payment providers send their webhooks to."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.payments import webhooks
from apps.payments.exceptions import WebhookPayloadInvalid


@extend_schema(exclude=True)
class ProviderWebhookView(APIView):
    """`POST /api/payments/webhooks/<provider>`: one signed event from a payment provider.

    The signature is the authentication (`apps.payments.webhooks`), so there is no
    authentication class and no CSRF check (DRF exempts its views; CSRF guards cookie
    sessions, which a provider has none of). Not rate limited: every delivery that passes
    the signature is the provider's, which sends in bursts from a few addresses, and a
    refused delivery would only come back later; an unsigned flood costs one HMAC per
    request and stores nothing. Left out of the OpenAPI schema: it is a contract with the
    provider (its event format and signature), not with API clients.

    200 {"id", "type", "outcome", "duplicate"} for a stored event (new or repeated); 400
    problem+json for a bad signature, timestamp or body; 404 for an unknown provider; 503
    `provider_event_deferred` for an event that cannot be applied yet (the provider
    retries it).
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    def post(self, request: Request, provider: str) -> Response:
        header = webhooks.signature_header(provider)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        # Checked before reading (a declared length) and after (a chunked body has none).
        if length > webhooks.MAX_BODY_BYTES:
            raise WebhookPayloadInvalid(f"The body is larger than {webhooks.MAX_BODY_BYTES} bytes.")
        body = request.body
        if len(body) > webhooks.MAX_BODY_BYTES:
            raise WebhookPayloadInvalid(f"The body is larger than {webhooks.MAX_BODY_BYTES} bytes.")
        receipt = webhooks.receive_event(
            provider=provider, body=body, signature=request.META.get(header)
        )
        event = receipt.event
        return Response(
            {
                "id": event.event_id,
                "type": event.type,
                "outcome": event.outcome,
                "duplicate": receipt.duplicate,
            },
            status=status.HTTP_200_OK,
        )
