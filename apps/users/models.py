"""The user account: email is the login, unique whatever its case."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.users.addresses import MAX_LENGTHS
from ecommerce.models import TimeStampedModel


def normalize_email(email: str) -> str:
    """Emails are stored lower-cased, so a plain unique index is case-insensitive."""
    return email.strip().lower()


class UserQuerySet(models.QuerySet["User"]):
    """Bulk writes retire the cached token users they change, as saves do
    (apps/users/authentication.py): a deactivation through `update()` applies at once."""

    def update(self, **kwargs: Any) -> int:
        from apps.users.authentication import forget_users

        ids = list(self.values_list("pk", flat=True))
        changed = super().update(**kwargs)
        forget_users(ids)
        return changed

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        from apps.users.authentication import forget_users

        objs = list(objs)
        changed = super().bulk_update(objs, fields, batch_size=batch_size)
        forget_users(obj.pk for obj in objs)
        return changed

    bulk_update.alters_data = True  # type: ignore[attr-defined]


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return normalize_email(email or "")

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalize_email(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)  # None gives an unusable password
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("email address", max_length=254, unique=True)
    name = models.CharField(max_length=150)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Whether the user can log into the admin site."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    class Meta:
        constraints = [
            # With this check the plain unique index on email is case-insensitive.
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="users_user_email_lowercase"
            ),
        ]
        indexes = [models.Index(fields=["date_joined"], name="users_user_joined_idx")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name


class Address(TimeStampedModel):
    """An entry of a customer's address book.

    Its fields have passed `apps.users.addresses.validate_address` (services write them);
    orders and carts keep their own copies, so editing or deleting an entry never changes
    an order. A customer has at most one default shipping and one default billing address.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses")
    first_name = models.CharField(max_length=MAX_LENGTHS["first_name"])
    last_name = models.CharField(max_length=MAX_LENGTHS["last_name"])
    company = models.CharField(max_length=MAX_LENGTHS["company"], blank=True)
    street_address_1 = models.CharField(max_length=MAX_LENGTHS["street_address_1"])
    street_address_2 = models.CharField(max_length=MAX_LENGTHS["street_address_2"], blank=True)
    city = models.CharField(max_length=MAX_LENGTHS["city"])
    postal_code = models.CharField(max_length=MAX_LENGTHS["postal_code"], blank=True)
    country = models.CharField(max_length=MAX_LENGTHS["country"])
    country_area = models.CharField(max_length=MAX_LENGTHS["country_area"], blank=True)
    phone = models.CharField(max_length=MAX_LENGTHS["phone"], blank=True)
    is_default_shipping = models.BooleanField(default=False)
    is_default_billing = models.BooleanField(default=False)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_default_shipping=True),
                name="users_address_one_default_shipping",
                violation_error_message="This customer already has a default shipping address.",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(is_default_billing=True),
                name="users_address_one_default_billing",
                violation_error_message="This customer already has a default billing address.",
            ),
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"),
                name="users_address_country_code",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}"
        return f"{name}, {self.street_address_1}, {self.city} ({self.country})"
