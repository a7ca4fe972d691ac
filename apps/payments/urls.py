"""The payments app's routes: provider webhooks in, and an order's refunds."""

from django.urls import URLPattern, re_path

from apps.payments import api
from ecommerce.api import identifiers

urlpatterns: list[URLPattern] = [
    re_path(
        r"^payments/webhooks/(?P<provider>[^/]+)/?$",
        api.ProviderWebhookView.as_view(),
        name="payment-webhook",
    ),
    re_path(
        rf"^orders/(?P<public_id>{identifiers.UUID_PATTERN})/refunds/?$",
        api.OrderRefundsView.as_view(),
        name="order-refunds",
    ),
]
