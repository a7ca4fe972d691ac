"""Writes to user accounts: registration, profile changes, setting a password by token."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from apps.users import events
from apps.users.exceptions import (
    EmailAlreadyRegistered,
    SetPasswordTokenExpired,
    SetPasswordTokenInvalid,
)
from apps.users.models import User, normalize_email
from apps.users.tokens import set_password_tokens
from ecommerce import outbox
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
        outbox.publish(events.USER_REGISTERED, {"user_id": user.pk})
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


def _token_user(token: str) -> tuple[User, str]:
    uid, _, raw = token.partition(".")
    try:
        user_id = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise SetPasswordTokenInvalid() from None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not raw:
        raise SetPasswordTokenInvalid()
    return user, raw


def set_password_with_token(*, token: str, password: str) -> User:
    """Set the password of the token's user; the token cannot be used again after this.

    Raises SetPasswordTokenExpired, SetPasswordTokenInvalid (malformed, unknown or
    inactive user, already used) and ValidationError (on `password`) when Django's
    validators refuse the password; on a refusal nothing changes.
    """
    user, raw = _token_user(token)
    if not set_password_tokens.check_token(user, raw):
        if set_password_tokens.is_expired(raw):
            raise SetPasswordTokenExpired()
        raise SetPasswordTokenInvalid()
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    with transaction.atomic():
        # Checked again under the row lock: of two requests with one token, one wins.
        user = User.objects.select_for_update().get(pk=user.pk)
        if not set_password_tokens.check_token(user, raw):
            raise SetPasswordTokenInvalid()
        user.set_password(password)
        user.save(update_fields=["password"])
    logger.info("user_password_set", user_id=user.pk)
    return user
