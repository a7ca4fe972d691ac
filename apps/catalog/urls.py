from apps.catalog import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("products", api.ProductViewSet, basename="product")
router.register("variants", api.VariantViewSet, basename="variant")
router.register("categories", api.CategoryViewSet, basename="category")
router.register("attributes", api.AttributeViewSet, basename="attribute")
router.register("product-types", api.ProductTypeViewSet, basename="product-type")

urlpatterns = router.urls
