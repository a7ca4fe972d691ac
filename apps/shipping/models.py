"""Shipping zones: the sets of countries that warehouses serve and shipping methods cover."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from ecommerce.models import TimeStampedModel

COUNTRY_PATTERN = r"^[A-Z]{2}$"
# ISO 3166-1 assigns 249 alpha-2 codes: a zone lists at most every one of them.
MAX_COUNTRIES = 250


def validate_countries(value: object) -> None:
    """A list of at most MAX_COUNTRIES ISO 3166-1 alpha-2 codes in capitals, each once."""
    if not isinstance(value, list) or not all(
        isinstance(code, str)
        and len(code) == 2
        and code.isascii()
        and code.isalpha()
        and code.isupper()
        for code in value
    ):
        raise ValidationError("Give countries as two-letter ISO codes in capitals: DE, FR.")
    if len(set(value)) != len(value):
        raise ValidationError("A country is listed twice.")
    if len(value) > MAX_COUNTRIES:
        raise ValidationError(f"A zone lists at most {MAX_COUNTRIES} countries.")


class ShippingZone(TimeStampedModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    countries = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_countries],
        help_text='Two-letter ISO country codes, for example ["DE", "AT"].',
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def serves(self, country: str) -> bool:
        return country.upper() in self.countries
