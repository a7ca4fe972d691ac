"""ASGI entry point (the project is served by gunicorn over WSGI; this is for tooling)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecommerce.settings")

application = get_asgi_application()
