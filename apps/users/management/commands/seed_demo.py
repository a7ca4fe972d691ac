"""`manage.py seed_demo`: idempotent demo data from every app that has a `demo` module."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.utils.module_loading import module_has_submodule


class Command(BaseCommand):
    help = "Create demo accounts (and, where apps provide them, demo data). Safe to re-run."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Demo data:")
        for app_config in apps.get_app_configs():
            if app_config.name.startswith("apps.") and module_has_submodule(
                app_config.module, "demo"
            ):
                import_module(f"{app_config.name}.demo").seed(stdout=self.stdout)
