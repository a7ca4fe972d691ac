"""The e-commerce project package: settings, URLs, the Celery app and cross-cutting machinery."""

from ecommerce.celery import app as celery_app

__all__ = ["celery_app"]
