"""`variants_for_order`: the variants an order names, read by one statement written once
(ecommerce/db/joined.py), equal to what the ORM's select_related reads, relations included."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext

from apps.catalog import services
from apps.catalog.models import ProductVariant
from apps.catalog.selectors import _variants_for_order_sql, variants_for_order
from ecommerce.db import prepared
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db


def fields_of(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_variants_and_their_product_and_type_are_the_orms_and_read_in_one_query(
    two_products: tuple[Any, Any],
) -> None:
    _tee, mug = two_products

    with CaptureQueriesContext(connection) as queries:
        found = variants_for_order(lookups=["tee-blk-m", str(mug.pk), "TEE-WHT-L"])
        # The product and its type come with the variant: reading them makes no query.
        types = {key: v.product.product_type for key, v in found.items()}

    assert len(queries) == 1
    assert list(found) == ["tee-blk-m", str(mug.pk), "TEE-WHT-L"]
    assert types[str(mug.pk)] is None  # a product without a type: the LEFT JOIN's NULLs
    assert types["tee-blk-m"] is not None
    assert types["tee-blk-m"].slug == "t-shirt"
    orm = {
        v.pk: v
        for v in ProductVariant.objects.select_related("product", "product__product_type")
        .annotate(sku_upper=Upper("sku"))
        .filter(sku_upper__in=["TEE-BLK-M", "TEE-WHT-L", "MUG"])
    }
    for variant in found.values():
        expected = orm[variant.pk]
        assert fields_of(variant) == fields_of(expected)
        assert fields_of(variant.product) == fields_of(expected.product)
        if expected.product.product_type is not None:
            assert fields_of(variant.product.product_type) == fields_of(
                expected.product.product_type
            )
        # Instances as the ORM leaves them: saved, from this database, nothing deferred.
        assert variant._state.adding is False
        assert variant._state.db == "default"
        assert variant.get_deferred_fields() == set()


def test_inactive_variants_inactive_products_unknown_skus_and_ambiguous_ids_are_absent(
    two_products: tuple[Any, Any],
) -> None:
    tee, _mug = two_products
    hidden = make_product(sku="HIDDEN", stock=1, is_active=False)
    services.update_variant(variant=tee.variants.get(sku="TEE-WHT-L"), is_active=False)

    found = variants_for_order(
        lookups=["HIDDEN", "TEE-WHT-L", "NOPE", str(tee.pk), str(hidden.pk), "tee-blk-m"]
    )

    # The tee sells one active variant now, so its id names it.
    assert {key: v.sku for key, v in found.items()} == {
        str(tee.pk): "TEE-BLK-M",
        "tee-blk-m": "TEE-BLK-M",
    }


def test_the_read_is_prepared_and_its_generic_plan_expects_the_rows_asked_for(
    two_products: tuple[Any, Any],
) -> None:
    # One placeholder per looked-up value: the generic plan then expects as many rows as
    # the values ask for, and PostgreSQL keeps it rather than plan every order's read.
    # With `= ANY(array)` it expected ten per array (4 rows on this tiny table, 20 on the
    # bench's), looked worse than planning for the values at hand, and was never kept.
    for _ in range(7):
        assert list(variants_for_order(lookups=["tee-blk-m"])) == ["tee-blk-m"]
    statement = prepared._statement(_variants_for_order_sql(0, 1))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans FROM pg_prepared_statements WHERE name = %s", [statement.name]
        )
        ((generic_plans,),) = cursor.fetchall()
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement.execute()}", ["TEE-BLK-M"])
        plan = cursor.fetchone()[0][0]["Plan"]

    assert generic_plans >= 1
    assert plan["Plan Rows"] == 1, plan
