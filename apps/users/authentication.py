"""JWT authentication that does not read the user's row on every request.

simplejwt's JWTAuthentication loads the user by id for every authenticated request (and
role checks then read its groups): about 7.5% of an order's CPU. `CachedJWTAuthentication`
reads that user through the read-through cache (ecommerce/caching.py: generation-checked
fills, single flight, the database when Redis is down) for AUTH_USER_CACHE_SECONDS, with
exactly the checks simplejwt makes: the user exists, is active, and the token's password
hash claim still matches (a password change revokes every earlier token).

An entry holds the user's columns except the password hash (the returned user loads that
field from the database only if code asks for it), the md5 of that hash that tokens carry,
and the user's role names. Every save or deletion of a user, and every change of group
membership or of a group, retires the entries of the users concerned at once and again on
commit, so a deactivation, a password change or a role removal applies to the very next
request.
`User.objects...update()` and `bulk_update()` retire theirs too (apps.users.models.
UserQuerySet); other writes that bypass model signals (raw SQL, `update()` on the groups
table) must call `forget_users`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from ecommerce import caching
from ecommerce.api.permissions import roles_of

NAME = "auth_user"
PREFIX = "auth:user:v1"


def user_key(user_id: Any) -> str:
    return f"{PREFIX}:{user_id}"


def user_generation_key(user_id: Any) -> str:
    return f"{PREFIX}:{user_id}:gen"


def _cached_fields() -> list[str]:
    return [f.attname for f in get_user_model()._meta.concrete_fields if f.attname != "password"]


def _entry(user_id: Any) -> bytes | None:
    """What the cache holds for a user: columns but the password, its md5, role names."""
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None:
        return None
    fields = _cached_fields()
    values = [getattr(user, name) for name in fields]
    revoke = get_md5_hash_password(user.password)
    return pickle.dumps((fields, values, revoke, sorted(roles_of(user))))


def cached_user(user_id: Any) -> tuple[Any, str] | None:
    """The user with this id and the md5 of its password hash, read through the cache."""
    if settings.AUTH_USER_CACHE_SECONDS <= 0:
        entry = _entry(user_id)
    else:
        entry = caching.read_through(
            name=NAME,
            key=user_key(user_id),
            generation_key=user_generation_key(user_id),
            compute=lambda: _entry(user_id),
            ttl_seconds=settings.AUTH_USER_CACHE_SECONDS,
        )
    if entry is None:
        return None
    fields, values, revoke, roles = pickle.loads(entry)  # noqa: S301 (our own cache entry)
    user: Any = get_user_model().from_db(DEFAULT_DB_ALIAS, fields, values)
    user._roles_cache = frozenset(roles)  # what ecommerce.api.permissions.roles_of reads
    return user, revoke


def forget_users(user_ids: Iterable[Any]) -> None:
    """Retire the cached users now and, inside a transaction, again once it commits.

    Now: a request that already holds the user's token never gets the old entry again,
    whenever the change commits. On commit: an entry filled meanwhile from the row as it
    was before the commit is retired too. (A fill that read the row before the first bump
    cannot land after it: fills check the generation.)
    """
    ids = sorted({str(pk) for pk in user_ids if pk is not None})
    if not ids:
        return

    def invalidate() -> None:
        caching.invalidate(
            name=NAME,
            generation_keys=[user_generation_key(pk) for pk in ids],
            keys=[user_key(pk) for pk in ids],
        )

    invalidate()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(invalidate)


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication with the user read through the cache."""

    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        found = cached_user(user_id)
        if found is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        user, revoke = found
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if (
            api_settings.CHECK_REVOKE_TOKEN
            and validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != revoke
        ):
            raise AuthenticationFailed(
                "The user's password has been changed.", code="password_changed"
            )
        return user


class CachedJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of simplejwt's class, for this one (drf-spectacular
    matches the exact class)."""

    target_class = "apps.users.authentication.CachedJWTAuthentication"


# --- Invalidation -------------------------------------------------------------------------


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="auth_user_cache_saved")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="auth_user_cache_deleted")
def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_users([instance.pk])


@receiver(m2m_changed, dispatch_uid="auth_user_cache_groups")
def _membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    if sender is not get_user_model().groups.through:
        return
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:  # user.groups.add(...): the user is the instance
        forget_users([instance.pk])
    elif action == "pre_clear":  # group.user_set.clear(): its members, before they go
        forget_users(instance.user_set.values_list("pk", flat=True))
    else:  # group.user_set.add(...): the users are in pk_set
        forget_users(pk_set or ())


@receiver(post_save, sender=Group, dispatch_uid="auth_user_cache_group_saved")
@receiver(pre_delete, sender=Group, dispatch_uid="auth_user_cache_group_deleted")
def _group_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A renamed or deleted group changes its members' role names."""
    forget_users(instance.user_set.values_list("pk", flat=True))
