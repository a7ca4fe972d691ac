"""Writes to user accounts: registration and profile changes."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.users.exceptions import EmailAlreadyRegistered
from apps.users.models import User, normalize_email
from ecommerce.api.permissions import Role
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


def register_user(*, email: str, name: str, password: str | None = None) -> User:
    """Create a customer account.

    Without a password the account cannot log in until one is set.
    Raises EmailAlreadyRegistered when the email exists in any letter case, and
    ValidationError (on `password`) when Django's validators refuse the password.
    """
    user = User(email=normalize_email(email), name=name.strip())
    if password:
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password or None)
    with transaction.atomic():
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # The unique index is the guarantee; the lookup only tells which error it was.
            if User.objects.filter(email=user.email).exists():
                raise EmailAlreadyRegistered(email=user.email) from None
            raise
        customer, _ = Group.objects.get_or_create(name=Role.CUSTOMER)
        user.groups.add(customer)
    logger.info("user_registered", user_id=user.pk, has_password=bool(password))
    return user


def update_profile(*, user: User, name: str | None = None) -> User:
    """Change what a user may change about themselves."""
    fields: list[str] = []
    if name is not None:
        user.name = name.strip()
        fields.append("name")
    if fields:
        user.save(update_fields=fields)
        logger.info("user_updated", user_id=user.pk, fields=fields)
    return user
