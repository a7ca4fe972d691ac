"""The orders app's routes: an order's returns.

`/api/orders` (apps.orders.api.OrderViewSet) is registered by apps.checkout.urls, whose
subclass places orders through checkout (priced with taxes and promotions); listing,
reading and cancelling are this app's views as they were. Returns hang under an order:
`/api/orders/{order_id}/returns` (their refund is served by apps.payments.urls).
"""

from apps.orders import return_api
from ecommerce.api.identifiers import UUID_PATTERN
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register(
    rf"orders/(?P<order_id>{UUID_PATTERN})/returns",
    return_api.ReturnViewSet,
    basename="order-return",
)

urlpatterns = router.urls
