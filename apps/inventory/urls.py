from apps.inventory import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
# Stock actions hang under the product routes of apps.catalog: /api/products/{sku}/stock.
router.register("products", api.StockViewSet, basename="product-stock")
router.register("warehouses", api.WarehouseViewSet, basename="warehouse")

urlpatterns = router.urls
