"""Set-password tokens: made when an account is told to choose a password, read when it
does. Apart from the services so the notifications app, which only listens to events, can
put one in an email without importing anyone's services."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from apps.users.models import User


class SetPasswordTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token under its own salt: one-time, as its hash covers the password
    hash and last_login, and valid for PASSWORD_RESET_TIMEOUT seconds."""

    # The salt of tokens already emailed: it names where the class first lived.
    key_salt = "apps.users.services.SetPasswordTokenGenerator"

    def is_expired(self, token: str) -> bool:
        """True when the token's timestamp is past the timeout (its hash is not checked)."""
        try:
            issued = base36_to_int(token.split("-", 1)[0])
        except ValueError:
            return False
        return self._num_seconds(self._now()) - issued > settings.PASSWORD_RESET_TIMEOUT


set_password_tokens = SetPasswordTokenGenerator()


def make_set_password_token(*, user: User) -> str:
    """A token for `POST /api/users/set-password`: `<base64 user id>.<reset token>`."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"{uid}.{set_password_tokens.make_token(user)}"
