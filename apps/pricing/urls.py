from apps.pricing import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("vouchers", api.VoucherViewSet, basename="voucher")
router.register("tax-rates", api.TaxRateViewSet, basename="tax-rate")
router.register("promotions", api.PromotionViewSet, basename="promotion")

urlpatterns = router.urls
