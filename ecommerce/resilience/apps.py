"""The resilience app: no models, only start-up checks of its settings."""

from __future__ import annotations

from django.apps import AppConfig


class ResilienceConfig(AppConfig):
    name = "ecommerce.resilience"
    label = "resilience"
    verbose_name = "Resilience"

    def ready(self) -> None:
        from django.core import checks

        from ecommerce.resilience.checks import check_resilience_settings

        checks.register(check_resilience_settings)
