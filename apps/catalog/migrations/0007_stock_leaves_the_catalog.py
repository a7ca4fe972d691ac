"""Stock and its ledger now live in `apps.inventory` (inventory.0001 copied them), SKUs on
variants (catalog.0006; a product keeps price and currency as its lowest variant price, to
sort lists by). Drop SKU and stock from products, with the search column and indexes that
read the SKU (search is rebuilt over products and variants by a later migration)."""

import apps.catalog.models
from django.db import migrations, models

DROP_POSTGRES_EXTRAS = [
    "DROP INDEX IF EXISTS catalog_product_search",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document",
    "DROP INDEX IF EXISTS catalog_product_sku_trgm",
    "DROP TRIGGER IF EXISTS catalog_stockmovement_append_only ON catalog_stockmovement",
    "DROP FUNCTION IF EXISTS catalog_stockmovement_append_only()",
]


def drop_postgres_extras(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in DROP_POSTGRES_EXTRAS:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_variants_attributes_media"),
        ("inventory", "0001_initial"),
        ("orders", "0006_order_lines_name_variants"),
    ]

    operations = [
        migrations.RunPython(drop_postgres_extras, migrations.RunPython.noop),
        migrations.DeleteModel(name="StockMovement"),
        migrations.RemoveConstraint(model_name="product", name="catalog_product_sku_ci_unique"),
        migrations.RemoveConstraint(model_name="product", name="catalog_stock_gte_0"),
        migrations.AlterField(
            model_name="product",
            name="price",
            field=models.DecimalField(decimal_places=2, editable=False, max_digits=12),
        ),
        migrations.AlterField(
            model_name="product",
            name="currency",
            field=models.CharField(
                default=apps.catalog.models.store_currency, editable=False, max_length=3
            ),
        ),
        migrations.RemoveField(model_name="product", name="sku"),
        migrations.RemoveField(model_name="product", name="stock"),
    ]
