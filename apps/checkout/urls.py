from apps.checkout import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("carts", api.CartViewSet, basename="cart")
# The orders app's viewset, its POST placing orders through checkout (see api.OrderViewSet).
router.register("orders", api.OrderViewSet, basename="order")

urlpatterns = router.urls
