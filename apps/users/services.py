"""Writes to user accounts: registration, profile changes, setting a password by token,
and the address book."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from apps.users import events
from apps.users.addresses import AddressBookFull, AddressNotFound, validate_address
from apps.users.exceptions import (
    AlreadySignedIn,
    EmailAlreadyRegistered,
    SetPasswordTokenExpired,
    SetPasswordTokenInvalid,
)
from apps.users.models import Address, User, normalize_email
from apps.users.tokens import set_password_tokens
from ecommerce import outbox
from ecommerce.api.permissions import Role, has_role
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


def register_user(
    *, email: str, name: str, password: str | None = None, registered_by: Any = None
) -> User:
    """Create a customer account.

    Without a password the account cannot log in until one is set.
    `registered_by` is the API caller: anonymous, or support staff registering a customer;
    a signed-in customer is refused (AlreadySignedIn), as the account made would be one
    they can neither read nor use in that session.
    Raises EmailAlreadyRegistered when the email exists in any letter case, and
    ValidationError (on `password`) when Django's validators refuse the password.
    """
    if (
        registered_by is not None
        and registered_by.is_authenticated
        and not has_role(registered_by, Role.SUPPORT)
    ):
        raise AlreadySignedIn
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


# --- Address book ------------------------------------------------------------------------


def _lock_address_book(user: User) -> None:
    """Serialize one customer's address book writes on their user row.

    The cap is a count, which no constraint can hold: two concurrent saves would both see
    room for one more. Locking the owner's row makes count-then-insert one step. The
    default flags are guarded by partial unique constraints; the lock only makes the
    clear-then-set of a new default never collide with another request doing the same.
    Call inside a transaction.
    """
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()


def _apply_defaults(
    *, user: User, address: Address, shipping: bool | None, billing: bool | None
) -> list[str]:
    """Set or clear the default flags of `address`; a new default takes over from the old.

    Caller holds the address book lock. Returns the fields it changed on `address`.
    """
    changed: list[str] = []
    for field, wanted in (("is_default_shipping", shipping), ("is_default_billing", billing)):
        if wanted is None or getattr(address, field) == wanted:
            continue
        if wanted:
            others = Address.objects.filter(user=user, **{field: True})
            if address.pk is not None:
                others = others.exclude(pk=address.pk)
            others.update(**{field: False, "updated_at": timezone.now()})
        setattr(address, field, wanted)
        changed.append(field)
    return changed


def store_address(
    *,
    user: User,
    data: Mapping[str, Any],
    default_shipping: bool = False,
    default_billing: bool = False,
) -> tuple[Address, bool]:
    """Add an address to `user`'s book unless an equal one is there; True when added.

    Equal after normalization means the same entry: saving the address of every order
    does not fill the book with copies. A default flag asked for is applied either way
    (False leaves an existing entry's flag as it is).
    Raises AddressInvalid, and AddressBookFull when the book is at ADDRESS_BOOK_MAX.
    """
    address_fields = validate_address(data)
    with transaction.atomic():
        _lock_address_book(user)
        address = Address.objects.filter(user=user, **address_fields).order_by("pk").first()
        created = address is None
        if address is None:
            limit = settings.ADDRESS_BOOK_MAX
            if Address.objects.filter(user=user).count() >= limit:
                raise AddressBookFull(limit=limit)
            address = Address(user=user, **address_fields)
        changed = _apply_defaults(
            user=user,
            address=address,
            shipping=default_shipping or None,
            billing=default_billing or None,
        )
        if created:
            address.save(force_insert=True)
        elif changed:
            address.save(update_fields=[*changed, "updated_at"])
    logger.info("address_saved", user_id=user.pk, address_id=address.pk, created=created)
    return address, created


def save_address(
    *,
    user: User,
    data: Mapping[str, Any],
    default_shipping: bool = False,
    default_billing: bool = False,
) -> Address:
    """`store_address` for callers that do not need to know whether it was new."""
    address, _ = store_address(
        user=user, data=data, default_shipping=default_shipping, default_billing=default_billing
    )
    return address


def update_address(
    *,
    user: User,
    address_id: int,
    data: Mapping[str, Any],
    default_shipping: bool | None = None,
    default_billing: bool | None = None,
) -> Address:
    """Replace the fields of one of `user`'s addresses with `data` (a whole address).

    A default flag of None leaves it as it is; True makes this entry the default in place
    of any other; False clears it.
    Raises AddressInvalid, and AddressNotFound when the entry is not `user`'s.
    """
    address_fields = validate_address(data)
    with transaction.atomic():
        _lock_address_book(user)
        address = Address.objects.filter(user=user, pk=address_id).first()
        if address is None:
            raise AddressNotFound(address_id=address_id)
        changed = [
            name for name, value in address_fields.items() if getattr(address, name) != value
        ]
        for name in changed:
            setattr(address, name, address_fields[name])
        changed += _apply_defaults(
            user=user, address=address, shipping=default_shipping, billing=default_billing
        )
        if changed:
            address.save(update_fields=[*changed, "updated_at"])
    logger.info("address_updated", user_id=user.pk, address_id=address.pk, fields=changed)
    return address


def delete_address(*, user: User, address_id: int) -> None:
    """Remove one of `user`'s addresses (orders keep their own copies).

    Raises AddressNotFound when the entry is not `user`'s.
    """
    deleted, _ = Address.objects.filter(user=user, pk=address_id).delete()
    if not deleted:
        raise AddressNotFound(address_id=address_id)
    logger.info("address_deleted", user_id=user.pk, address_id=address_id)
