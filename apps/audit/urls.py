from apps.audit import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("audit-events", api.AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
