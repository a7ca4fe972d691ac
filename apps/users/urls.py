from django.urls import re_path

from apps.users import api
from ecommerce.api.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("users", api.UserViewSet, basename="user")
router.register("users/me/addresses", api.AddressViewSet, basename="address")

urlpatterns = [
    re_path(r"^auth/token/?$", api.TokenObtainView.as_view(), name="token-obtain"),
    re_path(r"^auth/token/refresh/?$", api.TokenRefreshView.as_view(), name="token-refresh"),
    re_path(r"^auth/logout/?$", api.LogoutView.as_view(), name="logout"),
    re_path(r"^users/set-password/?$", api.SetPasswordView.as_view(), name="set-password"),
    *router.urls,
]
