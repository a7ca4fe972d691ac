from apps.catalog import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("products", api.ProductViewSet, basename="product")
router.register("variants", api.VariantViewSet, basename="variant")
router.register("categories", api.CategoryViewSet, basename="category")

urlpatterns = router.urls
