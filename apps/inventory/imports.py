"""`import_products`: upsert products, variants, attribute values and stock from CSV.

Each row commits on its own, with its stock set in the same short transaction: a stock
row is locked only for the moment between `set_stock_level` and that row's commit, so
checkouts of the products being imported wait for milliseconds at most, never for the
file. A bad row is rolled back alone and reported with the line it starts on. The file is
read whole first so rows of one product group are applied together, in file order, even
when they are not adjacent; with `dry_run` each group runs in a transaction rolled back at
its end (so later rows see earlier ones), and nothing is kept.

Columns (a header row names them; only `sku` is required; a blank cell changes nothing):
see COLUMNS_HELP, which the README repeats.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from rest_framework import serializers

from apps.catalog import imports as catalog_imports
from apps.inventory import selectors, services
from apps.inventory.exceptions import UnknownWarehouse
from apps.inventory.models import Warehouse
from ecommerce.api import identifiers
from ecommerce.commands import Progress
from ecommerce.errors import DomainError

STOCK_COLUMNS = ("stock", "warehouse")
COLUMNS = (*catalog_imports.COLUMNS, *STOCK_COLUMNS)
NOTE = "import_products"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Record:
    line: int
    row: dict[str, str]


class _RowError(Exception):
    pass


def _row_of(header: list[str], values: list[str]) -> dict[str, str]:
    """Values by column; missing trailing values are blank. Raises _RowError when a row
    has more values than columns, which an unquoted comma causes: applying it would
    silently drop part of the data."""
    if any(value.strip() for value in values[len(header) :]):
        raise _RowError(
            f"{len(values)} values for {len(header)} columns (quote a value that holds a comma)"
        )
    return dict(zip(header, values, strict=False))


def _stock_of(row: dict[str, str]) -> tuple[int | None, Warehouse | None]:
    """The row's stock target and warehouse, checked before anything is written."""
    raw = (row.get("stock") or "").strip()
    slug = (row.get("warehouse") or "").strip()
    target = None
    if raw:
        field_ = identifiers.IntegerField(min_value=0, max_value=services.MAX_STOCK)
        try:
            target = field_.run_validation(raw)
        except serializers.ValidationError as exc:
            raise _RowError(f"stock: {catalog_imports.messages_of(exc.detail)}") from exc
    if slug and target is None:
        raise _RowError("warehouse: give the stock to set in it")
    try:
        return target, (selectors.warehouse_by_slug(slug) if slug else None)
    except UnknownWarehouse as exc:
        raise _RowError(f"warehouse: {exc.detail}") from None


def _import_row(record: _Record, *, product_id: int | None, actor: Any) -> tuple[str, int]:
    """Apply one row in one transaction; ("created" | "updated" | "unchanged", product id).

    Raises _RowError, RowError, DomainError; the row's changes are rolled back then.
    """
    target, warehouse = _stock_of(record.row)
    with transaction.atomic():
        result = catalog_imports.upsert_row(record.row, product_id=product_id, actor=actor)
        outcome = result.outcome
        if target is not None:
            # Last in the transaction: the stock row stays locked only until the commit.
            if result.created:
                if target:
                    services.restock(
                        variant_id=result.variant.pk,
                        quantity=target,
                        warehouse=warehouse,
                        note="initial stock",
                        actor=actor,
                    )
            elif services.set_stock_level(
                variant_id=result.variant.pk,
                target=target,
                warehouse=warehouse,
                note=NOTE,
                actor=actor,
            ):
                outcome = "updated"
    return outcome, result.variant.product_id


def _read(lines: Iterable[str]) -> tuple[list[str], list[_Record | tuple[int, str]]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        raise ValueError("The header row must name a 'sku' column.")
    header = [name.strip() for name in header]
    catalog_imports.check_columns(header, extra=STOCK_COLUMNS)
    records: list[_Record | tuple[int, str]] = []
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
            records.append(_Record(line, _row_of(header, values)))
        except _RowError as exc:
            records.append((line, str(exc)))
    return header, records


def _group_key(record: _Record) -> tuple[str, str]:
    key = (record.row.get("product") or "").strip()
    return ("product", key) if key else ("sku", (record.row.get("sku") or "").strip().upper())


def import_products(
    *,
    lines: Iterable[str],
    dry_run: bool = False,
    actor: Any = None,
    after_row: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Upsert products from CSV text lines (header row first); see the module docstring.

    `after_row(line)` is called after each row is applied (committed, unless dry run);
    `progress` learns the number of records once the file is read, then each outcome.
    Raises ValueError for a header the import cannot read (nothing is changed then).
    """
    _header, records = _read(lines)
    report = ImportReport()
    if progress is not None:
        progress.add_total(len(records))
    groups: dict[tuple[str, str], list[_Record]] = {}
    for record in records:
        if isinstance(record, tuple):
            report.errors.append(record)
            if progress is not None:
                progress.advance("failed")
        else:
            groups.setdefault(_group_key(record), []).append(record)
    for key, rows in groups.items():
        if dry_run:
            with transaction.atomic():
                _import_group(
                    key, rows, report, actor=actor, after_row=after_row, progress=progress
                )
                transaction.set_rollback(True)
        else:
            _import_group(key, rows, report, actor=actor, after_row=after_row, progress=progress)
    report.errors.sort()
    return report


def _import_group(
    key: tuple[str, str],
    rows: list[_Record],
    report: ImportReport,
    *,
    actor: Any,
    after_row: Callable[[int], None] | None,
    progress: Progress | None,
) -> None:
    """The rows of one product group, in file order. A group named by a `product` key is
    bound to the product of its first existing SKU, or to the one its first good row
    creates; a row without a key stands alone (its SKU's product, or a new one)."""
    bound = (
        catalog_imports.product_of(record.row.get("sku", "").strip() for record in rows)
        if key[0] == "product"
        else None
    )
    for record in rows:
        try:
            outcome, product_id = _import_row(record, product_id=bound, actor=actor)
        except (_RowError, catalog_imports.RowError, DomainError) as exc:
            report.errors.append((record.line, str(exc)))
            outcome = "failed"
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
            if key[0] == "product":
                bound = product_id
        if progress is not None:
            progress.advance(outcome)
        if after_row is not None:
            after_row(record.line)


COLUMNS_HELP = """\
product            Grouping key: rows with the same key are variants of one product. The
                   group joins the product of its first SKU that exists; otherwise its
                   first row creates the product. Blank: the row is a product of its own
                   (or updates the variant its SKU names, wherever it is).
sku                Required. The variant's SKU (any letter case finds it). An existing SKU
                   is updated; a new one becomes a variant of the group's product.
name               Product name (required when the row creates a product).
variant_name       What tells the variant from its siblings: "M / Black".
description        Product description.
price              Variant price, for example 19.90 (required for a new variant).
category           Category slug or id.
product_type       Product type slug: declares which attr: columns belong to the product
                   and which to each variant.
is_active          Product on sale: true/false (yes/no, 1/0).
variant_is_active  Variant on sale: true/false.
weight_grams       Variant weight in grams.
stock              Units on hand after the import in `warehouse`: a stock count, applied as
                   one ledger adjustment (a new variant's as its initial restock).
warehouse          Warehouse slug for `stock` (blank: the default warehouse).
attr:<slug>        A value of attribute <slug>: a choice value's slug or name, a text, a
                   number or true/false. Product- or variant-level as the product type
                   declares it.
"""
