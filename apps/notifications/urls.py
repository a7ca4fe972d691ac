from apps.notifications import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("notifications", api.NotificationViewSet, basename="notification")
router.register("webhooks", api.WebhookEndpointViewSet, basename="webhook")

urlpatterns = router.urls
