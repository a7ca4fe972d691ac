"""Admin for accounts: staff log in with their email; roles are groups; addresses inline."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse_lazy

from apps.users.addresses import ADDRESS_FIELDS, AddressInvalid, validate_address
from apps.users.models import Address, User, normalize_email

# Only a superuser may grant what bypasses the roles: the superuser flag and permissions
# given to one account outside its groups.
SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")

# "View site" in the admin's header: the shop has no storefront here, its API docs are.
admin.site.site_url = reverse_lazy("docs")


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class AccountChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"email": forms.EmailField}

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class AddressAdminForm(forms.ModelForm):
    """An address edited by staff passes the same checks and normalization as the API's."""

    class Meta:
        model = Address
        fields = (*ADDRESS_FIELDS, "is_default_shipping", "is_default_billing")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:  # a field already refused (too long, ...): one message each
            return cleaned
        try:
            cleaned.update(validate_address(cleaned))
        except AddressInvalid as exc:
            for field, message in exc.extra["errors"].items():
                self.add_error(field, message)
        return cleaned


class AddressInline(admin.StackedInline):
    """A customer's address book, read by whoever may view the account and edited by
    whoever may change it (no permission of its own to hand out)."""

    model = Address
    form = AddressAdminForm
    extra = 0
    fields = (
        ("first_name", "last_name", "company"),
        ("street_address_1", "street_address_2"),
        ("postal_code", "city", "country_area", "country"),
        "phone",
        ("is_default_shipping", "is_default_billing"),
    )

    def _user_admin(self) -> admin.ModelAdmin:
        return self.admin_site.get_model_admin(User)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_admin().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_admin().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_admin().has_change_permission(request, obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = AccountChangeForm
    add_form = UserCreationForm
    list_display = ("email", "name", "roles", "is_active", "is_staff", "date_joined")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Roles and access",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list[type[InlineModelAdmin]]:
        """The address book on an existing account's page.

        A change posted without the address formset (a script filling only the account's
        fields) saves the account and leaves the addresses alone, instead of failing on
        the formset's missing management data.
        """
        if obj is None:
            return []
        prefix = Address._meta.get_field("user").remote_field.get_accessor_name()
        if request.method == "POST" and f"{prefix}-TOTAL_FORMS" not in request.POST:
            return []
        return [AddressInline]

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        """A staff member who may change accounts still cannot make anyone a superuser or
        grant permissions outside the role groups (their own account included)."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + SUPERUSER_ONLY_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        """A superuser's account (email, password, flags) is changed only by a superuser:
        otherwise resetting its password would hand over every permission."""
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all()))
