"""`manage.py import_products FILE.csv [--dry-run]`: upsert products, variants and stock."""

from __future__ import annotations

import csv
from argparse import RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from apps.inventory.imports import COLUMNS_HELP, import_products
from ecommerce.commands import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Upsert products, their variants, attribute values and stock from a CSV file with "
        "a header row. Each row commits on its own, so a checkout of a SKU being imported "
        "waits for one row at most, never for the file; re-running a file changes nothing. "
        "A bad row is reported with its line number and skipped (the other rows stay); "
        "exits 1 if any failed. Progress: a bar on a terminal, otherwise a "
        "command_progress log line every 500 rows or 5 seconds.\n\nColumns:\n" + COLUMNS_HELP
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter  # keep the columns table
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report, change nothing."
        )

    def handle(self, *args: Any, file: Path, dry_run: bool, **options: Any) -> None:
        try:
            with (
                file.open(newline="", encoding="utf-8-sig") as handle,
                self.progress("import_products") as progress,
            ):
                report = import_products(lines=handle, dry_run=dry_run, progress=progress)
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
