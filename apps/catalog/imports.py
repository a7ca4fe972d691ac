"""CSV import of products: upsert by SKU, one savepoint per row, a report of every bad row."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from rest_framework import serializers

from apps.catalog import services
from apps.catalog.models import Product
from apps.catalog.serializers import ProductCreateInputSerializer, ProductUpdateInputSerializer
from ecommerce.api.parsers import FormData  # a CSV row is text, read as a form is
from ecommerce.errors import DomainError

COLUMNS = ("sku", "name", "price", "description", "category", "is_active", "stock")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _RowError(Exception):
    pass


def _messages(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_messages(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return ", ".join(_messages(item) for item in detail)
    return str(detail)


def _validated(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        raise _RowError(_messages(serializer.errors))
    return dict(serializer.validated_data)


def _row_of(header: list[str], values: list[str]) -> dict[str, str]:
    """Values by column; missing trailing values are blank. Raises _RowError when a row
    has more values than columns, which an unquoted comma causes: applying it would
    silently drop part of the data."""
    if any(value.strip() for value in values[len(header) :]):
        raise _RowError(
            f"{len(values)} values for {len(header)} columns (quote a value that holds a comma)"
        )
    return dict(zip(header, values, strict=False))


def _import_row(row: dict[str, str], *, actor: Any) -> str:
    """Apply one row; returns "created", "updated" or "unchanged". Raises _RowError."""
    values = {key: (row.get(key) or "").strip() for key in COLUMNS}
    sku = values["sku"]
    if not sku:
        raise _RowError("sku: this column is required")
    given = {key: value for key, value in values.items() if value and key != "sku"}
    product = Product.objects.filter(sku__iexact=sku).first()
    if product is None:
        data = _validated(ProductCreateInputSerializer(data=FormData({"sku": sku, **given})))
        services.create_product(initial_stock=data.pop("stock"), actor=actor, **data)
        return "created"
    target_stock = given.pop("stock", None)
    data = _validated(ProductUpdateInputSerializer(data=FormData(given), partial=True))
    changed = {key: value for key, value in data.items() if getattr(product, key) != value}
    if changed:
        services.update_product(product=product, **changed)
    if target_stock is not None:
        stock = serializers.IntegerField(min_value=0)
        try:
            wanted = stock.run_validation(target_stock)
        except serializers.ValidationError as exc:
            raise _RowError(f"stock: {_messages(exc.detail)}") from exc
        if services.set_stock_level(
            product_id=product.pk, target=wanted, note="import_products", actor=actor
        ):
            changed["stock"] = wanted
    return "updated" if changed else "unchanged"


def import_products(
    *, lines: Iterable[str], dry_run: bool = False, actor: Any = None
) -> ImportReport:
    """Upsert products from CSV text lines (header row first).

    A bad row is reported with the line it starts on and rolled back alone; with `dry_run`
    everything is rolled back at the end. Raises ValueError when the header lacks `sku`.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header or "sku" not in header:
        raise ValueError("The header row must name a 'sku' column.")
    unknown = sorted(set(header) - set(COLUMNS))
    if unknown:
        raise ValueError(f"Unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)}).")
    report = ImportReport()
    with transaction.atomic():
        while True:
            # Read before the record: a quoted value may span lines, and the report names
            # the line a record starts on (csv's line_num is where it ends).
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                break
            if not values:  # a blank line
                continue
            try:
                with transaction.atomic():
                    outcome = _import_row(_row_of(header, values), actor=actor)
            except (_RowError, DomainError) as exc:
                report.errors.append((line, str(exc)))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
        if dry_run:
            transaction.set_rollback(True)
    return report
