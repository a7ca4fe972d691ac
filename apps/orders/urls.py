"""The orders app's routes: none of its own.

`/api/orders` (apps.orders.api.OrderViewSet) is registered by apps.checkout.urls, whose
subclass places orders through checkout (priced with taxes and promotions); listing,
reading and cancelling are this app's views as they were.
"""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
