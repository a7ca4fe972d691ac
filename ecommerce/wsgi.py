"""WSGI entry point for gunicorn: Django, behind the fast path for warm public reads."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (configured by the line above)

if settings.FAST_READS_ENABLED:
    from ecommerce.api.fastpath import FastReads

    application = FastReads(application)
