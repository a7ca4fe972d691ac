"""What the database itself refuses, whatever code writes the row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.pricing.models import Promotion, TaxRate, TaxSettings, Voucher
from tests.pricing.factories import make_voucher, tax_class

pytestmark = pytest.mark.django_db


def refused(write: Any) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


def test_the_migration_creates_the_three_tax_classes():
    from apps.pricing.models import TaxClass

    assert set(TaxClass.objects.values_list("slug", flat=True)) >= {"standard", "reduced", "zero"}


def test_used_count_stays_between_zero_and_the_limit():
    voucher = make_voucher("LIMIT", usage_limit=2, used_count=2)
    rows = Voucher.objects.filter(pk=voucher.pk)

    assert refused(lambda: rows.update(used_count=F("used_count") + 1))
    assert refused(lambda: rows.update(used_count=-1))
    assert refused(lambda: rows.update(usage_limit=1))
    assert not refused(lambda: rows.update(usage_limit=None, used_count=50))


def test_codes_are_stored_in_capitals_and_unique_in_any_letter_case():
    voucher = make_voucher(" spring-24 ")
    assert voucher.code == "SPRING-24"

    assert refused(lambda: make_voucher("Spring-24"))
    assert refused(lambda: Voucher.objects.filter(pk=voucher.pk).update(code="spring"))


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("percentage", "0", False),
        ("percentage", "0.01", True),
        ("percentage", "100", True),
        ("percentage", "100.01", False),
        ("fixed", "0", False),
        ("fixed", "0.01", True),
        ("free_shipping", "0", True),
        ("free_shipping", "5", False),
    ],
)
def test_voucher_values_fit_their_kind(kind, value, ok):
    assert refused(lambda: make_voucher("V", kind=kind, value=value)) is not ok


def test_voucher_currency_is_iso_and_windows_end_after_they_start():
    now = timezone.now()
    assert refused(lambda: make_voucher("CUR", currency="E1R"))
    assert refused(lambda: make_voucher("WIN", starts_at=now, ends_at=now))
    assert not refused(lambda: make_voucher("OK", starts_at=now, ends_at=now + timedelta(1)))


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"kind": "buy_x_pay_y", "value": "0", "buy_quantity": 3, "pay_quantity": 2}, True),
        ({"kind": "buy_x_pay_y", "value": "0", "buy_quantity": 2, "pay_quantity": 2}, False),
        ({"kind": "buy_x_pay_y", "value": "0", "buy_quantity": 2, "pay_quantity": 0}, False),
        ({"kind": "buy_x_pay_y", "value": "5", "buy_quantity": 3, "pay_quantity": 2}, False),
        ({"kind": "percentage", "value": "10"}, True),
        ({"kind": "percentage", "value": "101"}, False),
        ({"kind": "percentage", "value": "10", "buy_quantity": 3}, False),
        ({"kind": "fixed", "value": "0"}, False),
        ({"kind": "fixed", "value": "1.50"}, True),
    ],
)
def test_promotion_terms_fit_their_kind(fields, ok):
    values = {**fields, "value": Decimal(fields["value"])}
    assert refused(lambda: Promotion.objects.create(name="P", **values)) is not ok


def test_tax_rates_are_percentages_once_per_country_and_class():
    standard = tax_class("standard")
    TaxRate.objects.create(country="DE", tax_class=standard, rate=Decimal("19"))

    assert refused(lambda: TaxRate.objects.create(country="DE", tax_class=standard, rate=1))
    assert refused(lambda: TaxRate.objects.create(country="AT", tax_class=standard, rate=101))
    assert refused(lambda: TaxRate.objects.create(country="at", tax_class=standard, rate=20))
    assert refused(lambda: TaxRate.objects.create(country="AT", tax_class=standard, rate=-1))


def test_there_is_one_tax_settings_row():
    TaxSettings.objects.create()

    assert refused(lambda: TaxSettings.objects.create(id=2))
