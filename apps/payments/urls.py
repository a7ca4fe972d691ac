"""The payments app's routes: provider webhooks in."""

from django.urls import URLPattern, re_path

from apps.payments import api

urlpatterns: list[URLPattern] = [
    re_path(
        r"^payments/webhooks/(?P<provider>[^/]+)/?$",
        api.ProviderWebhookView.as_view(),
        name="payment-webhook",
    ),
]
