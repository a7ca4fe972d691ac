"""The URL map: operational endpoints at the root, the API under /api/, the admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.payments import sandbox_views
from ecommerce import health, media
from ecommerce.api.ratelimit import throttled_login
from ecommerce.observability import views as observability

urlpatterns = [
    re_path(r"^health/?$", health.health, name="health"),
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    re_path(r"^metrics/?$", observability.metrics, name="metrics"),
    re_path(r"^traces/?$", observability.traces, name="traces"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(
        r"^api/redoc/?$",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("api/", include("apps.users.urls")),
    path("api/", include("apps.catalog.urls")),
    path("api/", include("apps.inventory.urls")),
    path("api/", include("apps.shipping.urls")),
    path("api/", include("apps.pricing.urls")),
    path("api/", include("apps.orders.urls")),
    path("api/", include("apps.checkout.urls")),
    path("api/", include("apps.notifications.urls")),
    path("api/", include("apps.payments.urls")),
    path("api/", include("apps.audit.urls")),
    # Same rate limit and lockout as /api/auth/token (ecommerce/api/ratelimit.py); listed
    # before the admin's own URLs so that it answers /admin/login/.
    path("admin/login/", throttled_login(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    # Embedded mode: the in-process payment sandbox's redirect pages (404 with a provider URL).
    re_path(
        r"^_sandbox/v1/charges/(?P<charge_id>[A-Za-z0-9_]+)/action/?$",
        sandbox_views.charge_action,
        name="payment-sandbox-action",
    ),
    # Uploaded images, when they live on this host's filesystem (ecommerce/media.py).
    *media.urlpatterns(),
]

if settings.TEST_SLOW_ENDPOINT_ENABLED:  # graceful-shutdown tests only; off by default
    urlpatterns.append(re_path(r"^health/slow/?$", health.slow, name="health-slow"))

if settings.BENCH_ENDPOINTS_ENABLED:  # baselines for bench/run.py only; off by default
    urlpatterns.append(path("bench/", include("bench.urls")))
