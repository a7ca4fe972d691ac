from apps.orders import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("orders", api.OrderViewSet, basename="order")

urlpatterns = router.urls
