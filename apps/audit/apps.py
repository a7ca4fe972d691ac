"""The audit app: stores staff changes reported through ecommerce.audit, and tracks the
models whose saves are staff changes (apps.audit.tracking)."""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from apps.audit import tracking, writer
        from ecommerce import audit

        audit.set_writer(writer.write_event)
        tracking.connect()
