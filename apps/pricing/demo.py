"""Demo pricing for `manage.py seed_demo`: EU tax rates (where the demo ships with VAT), a
welcome voucher and a promotion on the Home category. Safe to re-run: nothing seeded is
changed."""

from __future__ import annotations

from decimal import Decimal
from typing import TextIO

from django.db import transaction

from apps.catalog.models import Category
from apps.pricing.models import Promotion, TaxClass, TaxRate, TaxSettings, Voucher

# Country -> (standard, reduced, zero) percent for the EU countries the demo ships to (the
# rates of 2024: check them before going live). Destinations outside the EU are exports
# without VAT, so they have no rates and are taxed at 0. A country without a reduced rate
# (DK) charges its standard rate on the reduced class.
DEMO_RATES = {
    "AT": ("20", "10", "0"),
    "BE": ("21", "6", "0"),
    "BG": ("20", "9", "0"),
    "CY": ("19", "5", "0"),
    "CZ": ("21", "12", "0"),
    "DE": ("19", "7", "0"),
    "DK": ("25", "25", "0"),
    "EE": ("22", "9", "0"),
    "ES": ("21", "10", "0"),
    "FI": ("25.5", "14", "0"),
    "FR": ("20", "5.5", "0"),
    "GR": ("24", "13", "0"),
    "HR": ("25", "13", "0"),
    "HU": ("27", "5", "0"),
    "IE": ("23", "13.5", "0"),
    "IT": ("22", "10", "0"),
    "LT": ("21", "9", "0"),
    "LU": ("17", "8", "0"),
    "LV": ("21", "12", "0"),
    "MT": ("18", "7", "0"),
    "NL": ("21", "9", "0"),
    "PL": ("23", "8", "0"),
    "PT": ("23", "6", "0"),
    "RO": ("19", "9", "0"),
    "SE": ("25", "12", "0"),
    "SI": ("22", "9.5", "0"),
    "SK": ("20", "10", "0"),
}
TAX_CLASS_NAMES = {"standard": "Standard rate", "reduced": "Reduced rate", "zero": "Zero rate"}
WELCOME_CODE = "WELCOME10"
PROMOTION_NAME = "Home week: 10% off"
PROMOTION_CATEGORY = "home"


@transaction.atomic
def seed(*, stdout: TextIO) -> None:
    classes = {
        slug: TaxClass.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name in TAX_CLASS_NAMES.items()
    }
    TaxSettings.objects.get_or_create(pk=TaxSettings.SINGLETON_PK)
    created_rates = 0
    for country, rates in DEMO_RATES.items():
        for slug, rate in zip(("standard", "reduced", "zero"), rates, strict=True):
            _, created = TaxRate.objects.get_or_create(
                country=country, tax_class=classes[slug], defaults={"rate": Decimal(rate)}
            )
            created_rates += created
    voucher, new_voucher = Voucher.objects.get_or_create(
        code=WELCOME_CODE,
        defaults={
            "name": "Welcome: 10% off your first order",
            "kind": Voucher.Kind.PERCENTAGE,
            "value": Decimal("10"),
            "per_customer_limit": 1,
        },
    )
    new_promotion = False
    category = Category.objects.filter(slug=PROMOTION_CATEGORY).first()
    if not Promotion.objects.filter(name=PROMOTION_NAME).exists():
        promotion = Promotion.objects.create(
            name=PROMOTION_NAME, kind=Promotion.Kind.PERCENTAGE, value=Decimal("10")
        )
        if category is not None:
            promotion.categories.add(category)
        else:  # no catalog seeded: a promotion on everything would surprise; keep it off
            Promotion.objects.filter(pk=promotion.pk).update(is_active=False)
        new_promotion = True
    stdout.write(
        f"  pricing   tax rates for {len(DEMO_RATES)} countries ({created_rates} new), "
        f"voucher {voucher.code}{' (new)' if new_voucher else ''}, "
        f"promotion {PROMOTION_NAME!r}{' (new)' if new_promotion else ''}\n"
    )
