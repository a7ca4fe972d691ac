"""Fixtures for the users tests: callers in each role, and the role groups as migrated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import StateApps
from rest_framework.test import APIClient

from apps.users.models import User
from tests.users.helpers import ROLES_MIGRATION, create_user_in


@pytest.fixture
def caller(
    api_client: APIClient, client_for: Callable[[Any], APIClient]
) -> Callable[[str], tuple[APIClient, User | None]]:
    """Make `(client, user)` for a caller kind; anonymous has no user and no token."""

    def make(kind: str) -> tuple[APIClient, User | None]:
        if kind == "anonymous":
            return api_client, None
        user = create_user_in(kind)
        return client_for(user), user

    return make


@pytest.fixture(scope="session")
def roles_migration_apps() -> StateApps:
    """The app registry as migration users.0002_roles sees it."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state(("users", "0002_roles")).apps


@pytest.fixture
def role_groups(db: None, roles_migration_apps: StateApps) -> None:
    """The role groups and their permissions, as the roles migration leaves them.

    Rows seeded by a data migration do not survive a transactional test's flush, and
    --reuse-db keeps a flushed database for the next run; running the migration's own
    (idempotent) function puts them back for the tests that rely on them.
    """
    ROLES_MIGRATION.create_roles(roles_migration_apps, None)
