"""`manage.py import_products FILE.csv`: products with variants and attribute values, stock
per warehouse through the ledger, every bad row reported with its line and rolled back
alone, `--dry-run`, a failing exit, and no lock held between rows that would block a
checkout while a long import runs."""

from __future__ import annotations

import threading
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction

from apps.catalog import services
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Category,
    Product,
    ProductType,
    ProductVariant,
)
from apps.inventory.imports import import_products
from apps.inventory.models import Stock, StockMovement, Warehouse
from apps.inventory.selectors import default_warehouse
from apps.orders import services as orders_services
from apps.orders.models import Order
from tests.catalog.factories import CategoryFactory, make_product
from tests.catalog.helpers import assert_ledger_matches, stock_of
from tests.inventory.factories import make_warehouse
from tests.users.factories import UserFactory

KNOWN = (
    "product, sku, name, variant_name, description, price, category, product_type, is_active, "
    "variant_is_active, weight_grams, stock, warehouse, and attr:<attribute slug>"
)


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


def ledger_rows(sku: str) -> list[tuple[str, int, int, str, str]]:
    """`(warehouse, delta, balance, reason, note)` of a variant's movements, oldest first."""
    return list(
        StockMovement.objects.filter(variant__sku__iexact=sku)
        .order_by("pk")
        .values_list("warehouse__slug", "delta", "balance", "reason", "note")
    )


def variant(sku: str) -> ProductVariant:
    return ProductVariant.objects.select_related("product").get(sku__iexact=sku)


def variant_values(sku: str) -> dict[str, str]:
    return dict(
        AssignedVariantAttribute.objects.filter(variant__sku=sku).values_list(
            "attribute__slug", "value__slug"
        )
    )


def product_values(product: Product) -> dict[str, str]:
    return dict(
        AssignedProductAttribute.objects.filter(product=product).values_list(
            "attribute__slug", "value__name"
        )
    )


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every column an import could touch, to prove that a refusal changed nothing."""
    return {
        "products": list(
            Product.objects.order_by("pk").values_list(
                "pk",
                "name",
                "description",
                "category_id",
                "product_type_id",
                "is_active",
                "price",
                "updated_at",
            )
        ),
        "variants": list(
            ProductVariant.objects.order_by("pk").values_list(
                "pk",
                "product_id",
                "sku",
                "name",
                "price",
                "weight_grams",
                "is_active",
                "updated_at",
            )
        ),
        "values": list(
            AssignedProductAttribute.objects.order_by("pk").values_list(
                "product_id", "attribute_id", "value_id"
            )
        )
        + list(
            AssignedVariantAttribute.objects.order_by("pk").values_list(
                "variant_id", "attribute_id", "value_id"
            )
        ),
        "stock": list(Stock.objects.order_by("pk").values_list("pk", "quantity")),
        "ledger": list(StockMovement.objects.order_by("pk").values_list("pk", "delta")),
        "categories": list(Category.objects.order_by("pk").values_list("pk", "slug")),
    }


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


@pytest.fixture
def tee_type() -> ProductType:
    size = services.create_attribute(
        name="Size", slug="size", values=[services.ValueSpec(s) for s in ("S", "M", "L")]
    )
    colour = services.create_attribute(
        name="Colour",
        slug="colour",
        values=[services.ValueSpec("Black"), services.ValueSpec("White")],
    )
    material = services.create_attribute(name="Material", slug="material", input_type="text")
    return services.create_product_type(
        name="T-shirt",
        slug="t-shirt",
        product_attributes=[material],
        variant_attributes=[size, colour],
    )


@pytest.fixture
def east() -> Warehouse:
    default_warehouse()
    return make_warehouse("east", priority=200)


# --- One-variant products, as before -------------------------------------------------------------


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
    lamp = variant("lamp-1")
    assert (
        lamp.product.name,
        lamp.price,
        lamp.product.description,
        lamp.product.category,
        lamp.product.is_active,
        stock_of(lamp.pk),
    ) == ("Desk lamp", Decimal("39.90"), "LED", mugs, True, 5)
    assert ledger_rows("lamp-1") == [("main", 5, 5, "restock", "initial stock")]
    kettle = variant("kettle-2")
    assert (kettle.price, kettle.product.category, kettle.product.is_active) == (
        Decimal("24.00"),
        None,
        True,
    )
    assert ledger_rows("kettle-2") == []
    assert variant("bin-3").product.is_active is False
    assert ledger_rows("bin-3") == []


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
    pot_before = snapshot()["variants"][2]

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 2 updated, 1 unchanged, 0 failed\n"
    mug = variant("mug-1")
    assert (mug.sku, mug.product.name, mug.price, mug.product.price, stock_of(mug.pk)) == (
        "mug-1",
        "Big Blue Mug",
        Decimal("12.00"),
        Decimal("12.00"),
        4,
    )
    assert ledger_rows("mug-1") == [
        ("main", 10, 10, "restock", "initial stock"),
        ("main", -6, 4, "adjustment", "import_products"),
    ]
    assert ledger_rows("tea-3")[-1] == ("main", 5, 9, "adjustment", "import_products")
    assert snapshot()["variants"][2] == pot_before
    assert ledger_rows("pot-4") == [("main", 2, 2, "restock", "initial stock")]
    assert_ledger_matches()


@pytest.mark.django_db
def test_a_sku_twice_in_one_file_is_created_then_updated(tmp_path):
    # given
    path = csv_file(tmp_path, "sku,name,price,stock\nlamp-1,Lamp,10.00,3\nLAMP-1,,11.00,1\n")

    # when
    output = import_ok(path)

    # then
    assert output == "1 created, 1 updated, 0 unchanged, 0 failed\n"
    lamp = variant("lamp-1")
    assert (lamp.product.name, lamp.price, stock_of(lamp.pk)) == ("Lamp", Decimal("11.00"), 1)
    assert ledger_rows("lamp-1") == [
        ("main", 3, 3, "restock", "initial stock"),
        ("main", -2, 1, "adjustment", "import_products"),
    ]


@pytest.mark.django_db
def test_is_active_switches_the_product_and_variant_is_active_the_variant(tmp_path, shelf):
    # given
    Product.objects.filter(pk=shelf["tea"].pk).update(is_active=False)
    path = csv_file(
        tmp_path, "sku,is_active,variant_is_active\nmug-1,false,\ntea-3,yes,\npot-4,,no\n"
    )

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 3 updated, 0 unchanged, 0 failed\n"
    assert dict(Product.objects.values_list("name", "is_active")) == {
        "Blue Mug": False,
        "Green Tea": True,
        "Teapot": True,
    }
    assert variant("pot-4").is_active is False


@pytest.mark.django_db
def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path):
    # given: as Excel saves "CSV UTF-8"
    path = csv_file(tmp_path, "\ufeffsku,name,price\r\nlamp-1,Lampe à poser,10.00\r\n")

    # when
    output = import_ok(path)

    # then
    assert output == "1 created, 0 updated, 0 unchanged, 0 failed\n"
    assert variant("lamp-1").product.name == "Lampe à poser"


# --- Variants, attributes and warehouses ----------------------------------------------------------


TEE_FILE = (
    "product,sku,name,variant_name,price,product_type,attr:material,attr:size,attr:colour,"
    "stock,warehouse\n"
    "tee,TEE-S-BLK,Tee,S / Black,19.00,t-shirt,Cotton,s,black,5,east\n"
    "tee,TEE-M-BLK,,M / Black,21.00,,,M,Black,2,\n"
    "other,MUG-9,Mug,,8.00,,,,,,\n"
    "tee,TEE-L-WHT,,L / White,18.50,,,l,white,0,east\n"
)


@pytest.mark.django_db
def test_rows_sharing_a_product_key_become_variants_of_one_product(tmp_path, tee_type, east):
    # when
    output = import_ok(csv_file(tmp_path, TEE_FILE))

    # then
    assert output == "4 created, 0 updated, 0 unchanged, 0 failed\n"
    tee = variant("TEE-S-BLK").product
    assert (tee.name, tee.product_type, tee.price) == ("Tee", tee_type, Decimal("18.50"))
    assert list(tee.variants.values_list("sku", "name", "price")) == [
        ("TEE-S-BLK", "S / Black", Decimal("19.00")),
        ("TEE-M-BLK", "M / Black", Decimal("21.00")),
        ("TEE-L-WHT", "L / White", Decimal("18.50")),
    ]
    assert product_values(tee) == {"material": "Cotton"}
    assert variant_values("TEE-M-BLK") == {"size": "m", "colour": "black"}
    assert variant_values("TEE-L-WHT") == {"size": "l", "colour": "white"}
    assert variant("MUG-9").product != tee
    assert ledger_rows("TEE-S-BLK") == [("east", 5, 5, "restock", "initial stock")]
    assert ledger_rows("TEE-M-BLK") == [("main", 2, 2, "restock", "initial stock")]
    assert ledger_rows("TEE-L-WHT") == []
    assert_ledger_matches()


@pytest.mark.django_db
def test_a_second_import_updates_values_and_stock_per_warehouse(tmp_path, tee_type, east):
    # given
    import_ok(csv_file(tmp_path, TEE_FILE))
    path = csv_file(
        tmp_path,
        "product,sku,attr:colour,attr:material,stock,warehouse\n"
        "tee,TEE-S-BLK,white,,3,east\n"  # colour changes; 5 -> 3 in east
        "tee,tee-m-blk,black,Cotton,7,east\n"  # same values; 0 -> 7 in east (main keeps 2)
        "tee,TEE-L-WHT,,,,\n",  # nothing
    )

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 2 updated, 1 unchanged, 0 failed\n"
    assert variant_values("TEE-S-BLK") == {"size": "s", "colour": "white"}
    assert ledger_rows("TEE-S-BLK")[-1] == ("east", -2, 3, "adjustment", "import_products")
    medium = variant("TEE-M-BLK")
    assert (stock_of(medium.pk, east.pk), stock_of(medium.pk)) == (7, 9)
    assert_ledger_matches()


@pytest.mark.django_db
def test_a_group_joins_the_product_of_its_existing_sku_wherever_it_is_in_the_file(tmp_path, shelf):
    # given: the new SKU comes first, its group's existing SKU later, another row between
    path = csv_file(
        tmp_path,
        "product,sku,variant_name,price\nm,mug-1-xl,XL,14.00\n,pot-9,,1.00\nm,mug-1,Regular,\n",
    )

    # when
    _error, output, errors = import_failing(path)

    # then: pot-9 is a new product without a name; the mug group is one product
    assert errors == "line 3: name: required for a new product\n"
    assert output == "1 created, 1 updated, 0 unchanged, 1 failed\n"
    mug = shelf["mug"]
    assert list(mug.variants.values_list("sku", "name")) == [
        ("mug-1", "Regular"),
        ("mug-1-xl", "XL"),
    ]
    mug.refresh_from_db()
    assert mug.price == Decimal("9.50")


# --- Bad rows ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_bad_row_is_reported_by_line_and_rolled_back_alone(tmp_path, shelf, tee_type):
    # given: physical line numbers on the left; line 4 is blank, lines 5-6 are one record
    make_product(sku="solo-1", stock=1, product_type=tee_type)
    lines = [
        "product,sku,name,price,category,product_type,attr:size,attr:material,stock,warehouse",
        ",good-1,Good one,5.00,mugs,,,,1,",  # 2
        ",bad-1,Bad price,1.999,,,,,1,",  # 3
        "",  # 4
        ',good-2,"Two',  # 5
        'lines",6.00,,,,,2,',  # 6
        ",bad sku,Bad sku,5.00,,,,,1,",  # 7
        ",mug-1,,0,,,,,,",  # 8: an existing product, priced 0
        ",mug-1,Renamed,,,,,,-1,",  # 9: a valid name and a bad stock: neither applies
        ",new-9,No price,,,,,,,",  # 10
        ",cat-1,Catless,5.00,nope,,,,,",  # 11
        ",tea-3,,,,,,,,nowhere",  # 12: a warehouse without stock
        ",tea-3,,,,,,,3,nowhere",  # 13
        ",,Skuless,5.00,,,,,,",  # 14
        ",tee-1,Tee,5.00,,t-shirt,xxl,,,",  # 15: not one of the sizes
        ",tee-2,Tee,5.00,,,m,,,",  # 16: no product type
        ",tea-3,Renamed tea,,,,,Linen,,",  # 17: its product has no type
        ",tee-3,Tee,5.00,,unknown-type,,,,",  # 18
        "g,solo-1,,,,,,,,",  # 19: binds group g to solo-1's product
        "g,mug-1,,,,,,,,",  # 20: a variant of another product
        ",pot-4,Teapot,35.00,,,,,99999999999,",  # 21
    ]
    path = csv_file(tmp_path, "\n".join(lines) + "\n")
    before = snapshot()

    # when
    error, output, errors = import_failing(path)

    # then
    mug = shelf["mug"]
    assert errors.splitlines() == [
        "line 3: price: Ensure that there are no more than 2 decimal places.",
        "line 7: sku: This value does not match the required pattern.",
        "line 8: price: Ensure this value is greater than or equal to 0.01.",
        "line 9: stock: Ensure this value is greater than or equal to 0.",
        "line 10: price: required for a new product",
        "line 11: category: Unknown category: nope.",
        "line 12: warehouse: give the stock to set in it",
        "line 13: warehouse: No active warehouse nowhere.",
        "line 14: sku: this column is required",
        "line 15: size: 'xxl' is not one of: s, m, l.",
        "line 16: attr:size: the product has no product type (give a product_type column)",
        "line 17: attr:material: the product has no product type (give a product_type column)",
        "line 18: product_type: Unknown product type: unknown-type.",
        f"line 20: sku: mug-1 is a variant of another product (Blue Mug, id {mug.pk}) than "
        "the rest of its product group",
        "line 21: stock: Ensure this value is less than or equal to 2147483647.",
    ]
    assert output == "2 created, 0 updated, 1 unchanged, 15 failed\n"
    assert error == "15 row(s) failed."
    assert sorted(ProductVariant.objects.values_list("sku", flat=True)) == [
        "good-1",
        "good-2",
        "mug-1",
        "pot-4",
        "solo-1",
        "tea-3",
    ]
    assert variant("good-2").product.name == "Two\nlines"
    assert ledger_rows("good-1") == [("main", 1, 1, "restock", "initial stock")]
    after = snapshot()
    assert after["products"][:4] == before["products"][:4]
    assert after["variants"][:4] == before["variants"][:4]
    assert ledger_rows("mug-1") == [("main", 10, 10, "restock", "initial stock")]
    assert stock_of(shelf["tea"].variant.pk) == 4


@pytest.mark.django_db
def test_a_bad_record_over_several_lines_is_reported_at_its_first_line(tmp_path):
    # given
    path = csv_file(tmp_path, 'sku,name,price\nok-1,Fine,1.00\nbad-2,"Multi\nline\nname",oops\n')

    # when
    _error, output, errors = import_failing(path)

    # then
    assert errors == "line 3: price: A valid number is required.\n"
    assert output == "1 created, 0 updated, 0 unchanged, 1 failed\n"
    assert not ProductVariant.objects.filter(sku="bad-2").exists()


@pytest.mark.django_db
def test_a_row_with_more_values_than_columns_is_refused_whole(tmp_path, shelf):
    # given: an unquoted comma would shift "large" out of the name and lose it
    path = csv_file(tmp_path, "sku,price,name\nmug-1,9.99,Mug, large\n")
    before = snapshot()

    # when
    _error, output, errors = import_failing(path)

    # then
    assert errors == "line 2: 4 values for 3 columns (quote a value that holds a comma)\n"
    assert output == "0 created, 0 updated, 0 unchanged, 1 failed\n"
    assert snapshot() == before


@pytest.mark.django_db
def test_blank_values_beyond_the_columns_are_ignored(tmp_path, shelf):
    # given: a trailing comma, as some spreadsheets write
    path = csv_file(tmp_path, "sku,price,name\nmug-1,9.99,Mug,\n")

    # when
    output = import_ok(path)

    # then
    assert output == "0 created, 1 updated, 0 unchanged, 0 failed\n"
    assert variant("mug-1").product.name == "Mug"


# --- Dry run ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dry_run_reports_what_would_happen_and_changes_nothing(tmp_path, tee_type, east):
    # given
    before = snapshot()

    # when
    output = import_ok(csv_file(tmp_path, TEE_FILE), "--dry-run")

    # then: the group's later rows saw its first (nothing failed for want of a name)
    assert output == "dry run, nothing saved: 4 created, 0 updated, 0 unchanged, 0 failed\n"
    assert snapshot() == before


@pytest.mark.django_db
def test_dry_run_with_a_bad_row_reports_it_fails_and_changes_nothing(tmp_path, shelf):
    # given
    path = csv_file(tmp_path, "sku,name,price,stock\nnew-1,New,5.00,3\nnew-2,Bad,-1,\nmug-1,,,0\n")
    before = snapshot()

    # when
    error, output, errors = import_failing(path, "--dry-run")

    # then
    assert errors == "line 3: price: Ensure this value is greater than or equal to 0.01.\n"
    assert output == "dry run, nothing saved: 1 created, 1 updated, 0 unchanged, 1 failed\n"
    assert error == "1 row(s) failed."
    assert snapshot() == before


# --- Files the command refuses whole --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sku,name,colour\nmug-9,Mug,blue\n", f"Unknown columns: colour (known: {KNOWN})."),
        (
            "sku,Price,stock_level\nmug-9,1.00,3\n",
            f"Unknown columns: Price, stock_level (known: {KNOWN}).",
        ),
        ("sku,attr:shade\nmug-9,blue\n", "Unknown attributes: attr:shade."),
        ("sku,name,name\nmug-9,Mug,Cup\n", "Columns named twice: name."),
        ("name,price\nMug,1.00\n", "The header row must name a 'sku' column."),
        ("SKU,name\nmug-9,Mug\n", "The header row must name a 'sku' column."),
        ("", "The header row must name a 'sku' column."),
    ],
)
def test_a_bad_header_refuses_the_whole_file(tmp_path, shelf, text, message):
    # given
    before = snapshot()

    # when
    error, output, errors = import_failing(csv_file(tmp_path, text))

    # then
    assert (error, output, errors) == (message, "", "")
    assert snapshot() == before


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
    before = snapshot()

    # when
    error, _output, _errors = import_failing(path)

    # then: the file is read whole before any row is applied
    assert error.startswith(f"{path} is not UTF-8 text: ")
    assert snapshot() == before


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
    before = snapshot()

    # when
    error, _output, _errors = import_failing(path)

    # then
    assert error == f"{path} is not readable CSV: field larger than field limit (131072)"
    assert snapshot() == before


def test_the_command_help_documents_the_columns(capsys):
    # when
    with pytest.raises(SystemExit):
        call_command("import_products", "--help")

    # then
    shown = capsys.readouterr().out
    assert "attr:<slug>        A value of attribute <slug>" in shown
    assert "warehouse          Warehouse slug for `stock`" in shown


# --- Checkouts while an import runs ---------------------------------------------------------------


def _locked_elsewhere(variant_ids: list[int]) -> bool:
    """Whether another connection holds a lock on any of these stock rows."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
            cursor.execute("BEGIN")
            try:
                cursor.execute(
                    "SELECT id FROM inventory_stock WHERE variant_id = ANY(%s) FOR UPDATE NOWAIT",
                    [variant_ids],
                )
            except Exception:  # LockNotAvailable
                return True
            finally:
                cursor.execute("ROLLBACK")
    finally:
        other.close()
    return False


@pytest.mark.django_db(transaction=True)
def test_an_order_is_placed_while_a_large_import_runs(tmp_path):
    # given: 400 stocked products; the import sets every one's stock to 50
    buyer = UserFactory(email="buyer@example.com")
    for n in range(400):
        make_product(sku=f"bulk-{n}", price="2.00", stock=20)
    path = csv_file(tmp_path, "sku,stock\n" + "".join(f"bulk-{n},50\n" for n in range(400)))
    paused, resume = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def pause_midway(line: int) -> None:
        if line == 200:  # row 199 (bulk-198) applied, bulk-199 onward still to come
            paused.set()
            assert resume.wait(30)

    def run_import() -> None:
        try:
            with path.open(encoding="utf-8") as handle:
                outcome["report"] = import_products(lines=handle, after_row=pause_midway)
        except Exception as exc:  # surfaced by the assertions below
            outcome["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=run_import)
    worker.start()
    try:
        assert paused.wait(60), outcome.get("error")

        # when: mid-import, no stock row is locked and an order takes stock at once
        ids = list(ProductVariant.objects.values_list("pk", flat=True))
        locked = _locked_elsewhere(ids)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        order, _ = orders_services.place_order(
            user=buyer,
            lines=[
                orders_services.OrderLine("bulk-10", 3),  # already imported: 50
                orders_services.OrderLine("bulk-300", 4),  # not yet: 20
            ],
            payment_token="tok_success",
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    finally:
        resume.set()
        worker.join(60)

    # then: the import's count of bulk-300 came after the order, and overrides it
    assert locked is False
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert (report.updated, report.errors) == (400, [])
    assert Order.objects.filter(pk=order.pk).exists()
    assert stock_of(variant("bulk-10").pk) == 47
    assert stock_of(variant("bulk-300").pk) == 50
    assert [row[1:4] for row in ledger_rows("bulk-300")] == [
        (20, 20, "restock"),
        (-4, 16, "order"),
        (34, 50, "adjustment"),
    ]
    assert_ledger_matches()


@pytest.mark.django_db(transaction=True)
def test_no_stock_row_stays_locked_between_rows(tmp_path):
    # given
    for n in range(3):
        make_product(sku=f"row-{n}", stock=1)
    ids = list(ProductVariant.objects.values_list("pk", flat=True))
    path = csv_file(tmp_path, "sku,stock\nrow-0,5\nrow-1,6\nrow-2,7\n")
    seen: list[bool] = []

    # when: after each row, another connection tries to lock every stock row at once
    with path.open(encoding="utf-8") as handle:
        report = import_products(
            lines=handle, after_row=lambda _line: seen.append(_locked_elsewhere(ids))
        )

    # then
    assert report.updated == 3
    assert seen == [False, False, False]
    with transaction.atomic():  # and the probe does see a lock when one is held
        list(Stock.objects.select_for_update().filter(variant_id=ids[0]))
        assert _locked_elsewhere(ids) is True
    assert not transaction.get_connection().in_atomic_block
