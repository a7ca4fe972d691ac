"""`manage.py seed_demo`: idempotent demo data from every app that has a `demo` module."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.utils.module_loading import module_has_submodule

from ecommerce.commands import OperatorCommand


class Command(OperatorCommand):
    help = "Create demo accounts (and, where apps provide them, demo data). Safe to re-run."

    def handle(self, *args: Any, **options: Any) -> None:
        seeding = [
            app_config.name
            for app_config in apps.get_app_configs()
            if app_config.name.startswith("apps.")
            and module_has_submodule(app_config.module, "demo")
        ]
        self.stdout.write("Demo data:")
        with self.progress("seed_demo", total=len(seeding)) as progress:
            for name in seeding:
                progress.clear()
                import_module(f"{name}.demo").seed(stdout=self.stdout)
                progress.advance(name.removeprefix("apps."))
