"""`manage.py import_products FILE.csv`: upsert by SKU, stock through the ledger, every bad row
reported with its line and never half-applied, `--dry-run`, and a failing exit."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.catalog.models import Category, Product, StockMovement
from tests.catalog.asserts import catalog_snapshot, ledger_rows
from tests.catalog.factories import CategoryFactory, make_product
from tests.catalog.helpers import assert_ledger_matches

KNOWN = "sku, name, price, description, category, is_active, stock"


def csv_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "products.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def import_ok(path: Path, *args: str) -> str:
    """Run the command expecting success; return stdout (stderr must stay empty)."""
    out, err = StringIO(), StringIO()
    call_command("import_products", str(path), *args, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def import_failing(path: Path, *args: str) -> tuple[str, str, str]:
    """Run the command expecting CommandError; return (error, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_products", str(path), *args, stdout=out, stderr=err)
    assert caught.value.returncode == 1
    return str(caught.value), out.getvalue(), err.getvalue()


@pytest.fixture
def mugs() -> Category:
    return CategoryFactory(name="Mugs", slug="mugs")


@pytest.fixture
def shelf(mugs: Category) -> dict[str, Product]:
    return {
        "mug": make_product(sku="mug-1", name="Blue Mug", price="9.50", stock=10, category=mugs),
        "tea": make_product(sku="tea-3", name="Green Tea", price="19.99", stock=4),
        "pot": make_product(sku="pot-4", name="Teapot", price="35.00", stock=2),
    }


# --- Creating and updating ----------------------------------------------------------------------


@pytest.mark.django_db
def test_new_rows_are_created_with_their_initial_stock_in_the_ledger(tmp_path, mugs):
    # given
    path = csv_file(
        tmp_path,
        "sku,name,price,description,category,is_active,stock\r\n"
        "lamp-1,Desk lamp,39.90,LED,mugs,true,5\r\n"
        "kettle-2,Kettle,24,,,,\r\n"
        "bin-3,Bin,3.50,,,false,0\r\n",
    )

    # when
    output = import_ok(path)

    # then
    assert output == "3 created, 0 updated, 0 unchanged, 0 failed\n"
    lamp = Product.objects.get(sku="lamp-1")
    assert (
        lamp.name,
        lamp.price,
        lamp.description,
        lamp.category,
        lamp.is_active,
        lamp.stock,
    ) == ("Desk lamp", Decimal("39.90"), "LED", mugs, True, 5)
    assert ledger_rows(lamp) == [(5, 5, "restock", "initial stock")]
    kettle = Product.objects.get(sku="kettle-2")
    assert (kettle.price, kettle.category, kettle.is_active, kettle.stock) == (
        Decimal("24.00"),
        None,
        True,
        0,
    )
    assert ledger_rows(kettle) == []
    assert Product.objects.get(sku="bin-3").is_active is False


@pytest.mark.django_db
def test_existing_rows_are_updated_by_sku_in_any_case_and_stock_is_set_by_an_adjustment(
    tmp_path, shelf
):
    # given
    path = csv_file(
        tmp_path,
        "sku,name,price,is_active,stock\n"
        "MUG-1,Big Blue Mug,12.00,,4\n"  # rename, reprice, 10 -> 4
        "tea-3,,,,9\n"  # only stock, 4 -> 9
        "pot-4,Teapot,35.00,true,2\n",  # already so
    )
    pot_before = catalog_snapshot()["products"][2]

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 2 updated, 1 unchanged, 0 failed\n"
    mug = Product.objects.get(pk=shelf["mug"].pk)
    assert (mug.sku, mug.name, mug.price, mug.stock, mug.category.slug) == (
        "mug-1",
        "Big Blue Mug",
        Decimal("12.00"),
        4,
        "mugs",
    )
    assert ledger_rows(mug) == [
        (10, 10, "restock", "initial stock"),
        (-6, 4, "adjustment", "import_products"),
    ]
    tea = Product.objects.get(pk=shelf["tea"].pk)
    assert (tea.name, tea.price, tea.stock) == ("Green Tea", Decimal("19.99"), 9)
    assert ledger_rows(tea)[-1] == (5, 9, "adjustment", "import_products")
    assert catalog_snapshot()["products"][2] == pot_before
    assert ledger_rows(shelf["pot"]) == [(2, 2, "restock", "initial stock")]
    assert_ledger_matches(mug.pk, tea.pk, shelf["pot"].pk)


@pytest.mark.django_db
def test_a_sku_twice_in_one_file_is_created_then_updated(tmp_path):
    # given
    path = csv_file(tmp_path, "sku,name,price,stock\nlamp-1,Lamp,10.00,3\nLAMP-1,,11.00,1\n")

    # when
    output = import_ok(path)

    # then
    assert output == "1 created, 1 updated, 0 unchanged, 0 failed\n"
    lamp = Product.objects.get(sku="lamp-1")
    assert (lamp.name, lamp.price, lamp.stock) == ("Lamp", Decimal("11.00"), 1)
    assert ledger_rows(lamp) == [
        (3, 3, "restock", "initial stock"),
        (-2, 1, "adjustment", "import_products"),
    ]


@pytest.mark.django_db
def test_an_import_deactivates_and_reactivates_by_the_is_active_column(tmp_path, shelf):
    # given
    Product.objects.filter(pk=shelf["tea"].pk).update(is_active=False)
    path = csv_file(tmp_path, "sku,is_active\nmug-1,false\ntea-3,yes\n")

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 2 updated, 0 unchanged, 0 failed\n"
    assert dict(Product.objects.values_list("sku", "is_active")) == {
        "mug-1": False,
        "tea-3": True,
        "pot-4": True,
    }


@pytest.mark.django_db
def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path):
    # given: as Excel saves "CSV UTF-8"
    path = csv_file(tmp_path, "\ufeffsku,name,price\r\nlamp-1,Lampe à poser,10.00\r\n")

    # when
    output = import_ok(path)

    # then
    assert output == "1 created, 0 updated, 0 unchanged, 0 failed\n"
    assert Product.objects.get(sku="lamp-1").name == "Lampe à poser"


# --- Bad rows ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_bad_row_is_reported_by_line_and_good_rows_still_apply(tmp_path, shelf):
    # given: physical line numbers on the left; line 4 is blank, lines 5-6 are one record
    lines = [
        "sku,name,price,category,stock",  # 1
        "good-1,Good one,5.00,mugs,1",  # 2
        "bad-1,Bad price,1.999,,1",  # 3
        "",  # 4
        'good-2,"Two',  # 5
        'lines",6.00,,2',  # 6
        "bad sku,Bad sku,5.00,,1",  # 7
        "mug-1,,0,,",  # 8: an existing product, priced 0
        "mug-1,Renamed,,,-1",  # 9: a valid name and a bad stock: neither applies
        "new-9,No price,,,",  # 10
        "cat-1,Catless,5.00,nope,",  # 11
        "tea-3,,,,-4",  # 12
        ",Skuless,5.00,,",  # 13
    ]
    path = csv_file(tmp_path, "\n".join(lines) + "\n")
    mug_before = catalog_snapshot()["products"][0]

    # when
    error, output, errors = import_failing(path)

    # then
    assert errors.splitlines() == [
        "line 3: price: Ensure that there are no more than 2 decimal places.",
        "line 7: sku: This value does not match the required pattern.",
        "line 8: price: Ensure this value is greater than or equal to 0.01.",
        "line 9: stock: Ensure this value is greater than or equal to 0.",
        "line 10: price: This field is required.",
        "line 11: category: Unknown category: nope.",
        "line 12: stock: Ensure this value is greater than or equal to 0.",
        "line 13: sku: this column is required",
    ]
    assert output == "2 created, 0 updated, 0 unchanged, 8 failed\n"
    assert error == "8 row(s) failed."
    assert sorted(Product.objects.values_list("sku", flat=True)) == [
        "good-1",
        "good-2",
        "mug-1",
        "pot-4",
        "tea-3",
    ]
    assert Product.objects.get(sku="good-2").name == "Two\nlines"
    assert ledger_rows(Product.objects.get(sku="good-1")) == [(1, 1, "restock", "initial stock")]
    assert catalog_snapshot()["products"][0] == mug_before
    assert ledger_rows(shelf["mug"]) == [(10, 10, "restock", "initial stock")]
    assert Product.objects.get(sku="tea-3").stock == 4


@pytest.mark.django_db
def test_a_bad_record_over_several_lines_is_reported_at_its_first_line(tmp_path):
    # given
    path = csv_file(tmp_path, 'sku,name,price\nok-1,Fine,1.00\nbad-2,"Multi\nline\nname",oops\n')

    # when
    _error, output, errors = import_failing(path)

    # then
    assert errors == "line 3: price: A valid number is required.\n"
    assert output == "1 created, 0 updated, 0 unchanged, 1 failed\n"
    assert not Product.objects.filter(sku="bad-2").exists()


@pytest.mark.django_db
def test_a_row_with_more_values_than_columns_is_refused_whole(tmp_path, shelf):
    # given: an unquoted comma would shift "large" out of the name and lose it
    path = csv_file(tmp_path, "sku,price,name\nmug-1,9.99,Mug, large\n")
    before = catalog_snapshot()

    # when
    _error, output, errors = import_failing(path)

    # then
    assert errors == ("line 2: 4 values for 3 columns (quote a value that holds a comma)\n")
    assert output == "0 created, 0 updated, 0 unchanged, 1 failed\n"
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_blank_values_beyond_the_columns_are_ignored(tmp_path, shelf):
    # given: a trailing comma, as some spreadsheets write
    path = csv_file(tmp_path, "sku,price,name\nmug-1,9.99,Mug,\n")

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 1 updated, 0 unchanged, 0 failed\n"
    assert Product.objects.get(sku="mug-1").name == "Mug"


@pytest.mark.django_db
def test_a_taken_sku_in_another_case_updates_instead_of_failing(tmp_path, shelf):
    # given
    path = csv_file(tmp_path, "sku,name\nTEA-3,Sencha\n")

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 1 updated, 0 unchanged, 0 failed\n"
    assert list(Product.objects.filter(sku__iexact="tea-3").values_list("sku", "name")) == [
        ("tea-3", "Sencha")
    ]


# --- Dry run ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dry_run_reports_what_would_happen_and_changes_nothing(tmp_path, shelf):
    # given
    path = csv_file(tmp_path, "sku,name,price,stock\nnew-1,New,5.00,3\nmug-1,,11.00,0\n")
    before = catalog_snapshot()

    # when
    output = import_ok(path, "--dry-run")

    # then
    assert output == "dry run, nothing saved: 1 created, 1 updated, 0 unchanged, 0 failed\n"
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_dry_run_with_a_bad_row_reports_it_fails_and_changes_nothing(tmp_path, shelf):
    # given
    path = csv_file(tmp_path, "sku,name,price\nnew-1,New,5.00\nnew-2,Bad,-1\n")
    before = catalog_snapshot()

    # when
    error, output, errors = import_failing(path, "--dry-run")

    # then
    assert errors == "line 3: price: Ensure this value is greater than or equal to 0.01.\n"
    assert output == "dry run, nothing saved: 1 created, 0 updated, 0 unchanged, 1 failed\n"
    assert error == "1 row(s) failed."
    assert catalog_snapshot() == before


# --- Files the command refuses whole --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sku,name,colour\nmug-9,Mug,blue\n",
            f"Unknown columns: colour (known: {KNOWN}).",
        ),
        (
            "sku,Price,stock_level\nmug-9,1.00,3\n",
            f"Unknown columns: Price, stock_level (known: {KNOWN}).",
        ),
        ("name,price\nMug,1.00\n", "The header row must name a 'sku' column."),
        ("SKU,name\nmug-9,Mug\n", "The header row must name a 'sku' column."),
        ("", "The header row must name a 'sku' column."),
    ],
)
def test_a_bad_header_refuses_the_whole_file(tmp_path, shelf, text, message):
    # given
    before = catalog_snapshot()

    # when
    error, output, errors = import_failing(csv_file(tmp_path, text))

    # then
    assert (error, output, errors) == (message, "", "")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_a_missing_file_is_a_command_error(tmp_path):
    # given
    path = tmp_path / "absent.csv"

    # when
    error, output, _errors = import_failing(path)

    # then
    assert error == f"No such file: {path}"
    assert output == ""


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_changes_nothing(tmp_path, shelf):
    # given: valid rows first, then a Latin-1 byte
    path = csv_file(tmp_path, b"sku,name,price\nnew-1,Fine,1.00\nnew-2,Caf\xe9,2.00\n")
    before = catalog_snapshot()

    # when
    error, _output, _errors = import_failing(path)

    # then
    assert error.startswith(f"{path} is not UTF-8 text: ")
    assert catalog_snapshot() == before
    assert not StockMovement.objects.filter(product__sku="new-1").exists()


@pytest.mark.django_db
def test_a_directory_is_a_command_error(tmp_path):
    # when
    error, output, _errors = import_failing(tmp_path)

    # then
    assert error == f"Cannot read {tmp_path}: Is a directory"
    assert output == ""


@pytest.mark.django_db
def test_a_value_over_the_csv_field_limit_refuses_the_whole_file(tmp_path, shelf):
    # given: a good row, then a description longer than csv reads (128 KiB)
    path = csv_file(
        tmp_path, f"sku,name,price,description\nnew-1,New,1.00,\nnew-2,Long,1.00,{'a' * 200_000}\n"
    )
    before = catalog_snapshot()

    # when
    error, _output, _errors = import_failing(path)

    # then
    assert error == f"{path} is not readable CSV: field larger than field limit (131072)"
    assert catalog_snapshot() == before
