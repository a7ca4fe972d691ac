from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "apps.users"
    label = "users"
    verbose_name = "Users"

    def ready(self) -> None:
        # The cached JWT user's invalidation receivers, in every process that changes users
        # (web, workers, management commands), not only where DRF loaded the class.
        from apps.users import authentication  # noqa: F401
