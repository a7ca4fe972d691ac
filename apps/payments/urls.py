"""The payments app's routes: provider webhooks in, an order's refunds, a return's refund."""

from django.urls import URLPattern, re_path

from apps.payments import api, return_api
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
    re_path(
        rf"^orders/(?P<public_id>{identifiers.UUID_PATTERN})/refunds/"
        rf"(?P<refund_id>{identifiers.UUID_PATTERN})/?$",
        api.OrderRefundView.as_view(),
        name="order-refund",
    ),
    re_path(
        rf"^orders/(?P<order_id>{identifiers.UUID_PATTERN})/returns/"
        rf"(?P<return_id>{identifiers.UUID_PATTERN})/refund/?$",
        return_api.ReturnRefundView.as_view(),
        name="order-return-refund",
    ),
]
