"""Embedded mode's stand-in for the sandbox process's redirect pages: with no
PAYMENT_PROVIDER_URL the sandbox runs in-process, so this app serves the page a charge
waiting for its customer (`tok_action_required`) sends the customer to, at
`/_sandbox/v1/charges/<id>/action` (PAYMENT_SANDBOX_ACTION_BASE_URL). With a provider URL
set it is 404: the sandbox process serves its own pages."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.payments.gateway import shared_sandbox
from apps.payments.sandbox.server import action_page


@csrf_exempt  # a test-mode page with no session behind it, like the sandbox process's own
@require_http_methods(["GET", "POST"])
def charge_action(request: HttpRequest, charge_id: str) -> HttpResponse:
    if settings.PAYMENT_PROVIDER_URL:
        raise Http404("The payment sandbox runs as its own process.")
    provider = shared_sandbox()
    if request.method == "POST":
        outcome = request.GET.get("action") or request.POST.get("action")
        if outcome is None and request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
            outcome = body.get("action") if isinstance(body, dict) else None
        answer = provider.complete_action(charge_id=charge_id, outcome=outcome)
        return JsonResponse(answer.body, status=answer.status)
    page = action_page(provider, charge_id, {"QUERY_STRING": request.META.get("QUERY_STRING", "")})
    return HttpResponse(page.html, status=page.status, content_type="text/html; charset=utf-8")
