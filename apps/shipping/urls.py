from apps.shipping import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("shipping-zones", api.ShippingZoneViewSet, basename="shipping-zone")
router.register("shipping-methods", api.ShippingMethodViewSet, basename="shipping-method")

urlpatterns = router.urls
