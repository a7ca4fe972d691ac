"""The invariant checker: apps register named checks, `manage.py check_invariants` runs them."""

from __future__ import annotations

from django.apps import AppConfig


class InvariantsConfig(AppConfig):
    name = "ecommerce.invariants"
    label = "invariants"
    verbose_name = "Invariants"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from ecommerce.invariants import builtin  # noqa: F401  the outbox's own checks

        # Each installed app's `invariants` module registers its checks, as `admin` modules
        # do: this package names no app, so `ecommerce/` still never imports `apps/`.
        autodiscover_modules("invariants")
