"""`manage.py import_products FILE.csv [--dry-run]`: upsert products by SKU."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.catalog.imports import COLUMNS, import_products


class Command(BaseCommand):
    help = (
        f"Upsert products from a CSV file with a header row (columns: {', '.join(COLUMNS)}). "
        "Each bad row is reported with its line number and skipped; exits 1 if any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report, change nothing."
        )

    def handle(self, *args: Any, file: Path, dry_run: bool, **options: Any) -> None:
        try:
            with file.open(newline="", encoding="utf-8-sig") as handle:
                report = import_products(lines=handle, dry_run=dry_run)
        except FileNotFoundError:
            raise CommandError(f"No such file: {file}") from None
        except OSError as exc:  # a directory, no permission, ...
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text: {exc}") from None
        except csv.Error as exc:  # for instance a value over csv's field size limit
            raise CommandError(f"{file} is not readable CSV: {exc}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for line, reason in report.errors:
            self.stderr.write(f"line {line}: {reason}")
        prefix = "dry run, nothing saved: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.errors)} failed"
        )
        if not report.ok:
            raise CommandError(f"{len(report.errors)} row(s) failed.")
