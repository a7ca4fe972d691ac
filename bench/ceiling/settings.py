"""Settings of the ceiling project: no middleware, no apps of the shop, DEBUG off.

Served by bench/run.py with gunicorn (the same sync worker count as the shop) against the
bench database, so its figures are what this machine can do for a DRF APIView and for the
least an order write can do; the shop's figures are compared with them in the same run.
"""

from __future__ import annotations

import os

import environ

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "ceiling-secret-key-0123456789-not-for-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.ceiling.urls"
WSGI_APPLICATION = "bench.ceiling.wsgi.application"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES = {"default": environ.Env.db_url_config(os.environ["DATABASE_URL"])}
# The shop's own defaults (ecommerce/settings.py): persistent connections, JIT off.
DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["OPTIONS"] = {"options": "-c jit=off"}
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING_CONFIG = None
