"""Demo accounts for `manage.py seed_demo`: an admin and a customer."""

from __future__ import annotations

import secrets
from typing import TextIO

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from apps.users.models import User
from ecommerce.api.permissions import Role

DEMO_ACCOUNTS = (
    ("admin@example.com", "Demo Admin", Role.ADMIN),
    ("customer@example.com", "Demo Customer", Role.CUSTOMER),
)
# Embedded mode uses a fixed, documented password; elsewhere it is random unless given.
EMBEDDED_DEMO_PASSWORD = "demo-shop-2026"  # noqa: S105 (documented, DEBUG only)


def seed(*, stdout: TextIO) -> None:
    for email, name, role in DEMO_ACCOUNTS:
        with transaction.atomic():
            user = User.objects.filter(email=email).first()
            if user is not None:
                stdout.write(f"  {role:<9} {email} (exists; password unchanged)\n")
                continue
            password = settings.DEMO_PASSWORD or (
                EMBEDDED_DEMO_PASSWORD if settings.DEBUG else secrets.token_urlsafe(12)
            )
            is_admin = role == Role.ADMIN
            user = User.objects.create_user(
                email, password, name=name, is_staff=is_admin, is_superuser=is_admin
            )
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
            stdout.write(f"  {role:<9} {email} / {password}\n")
