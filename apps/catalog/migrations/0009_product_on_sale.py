"""`catalog_product.on_sale`: whether any of the product's variants is active, kept by the
search triggers of 0008, and the indexes the public list reads it through.

Every public list, search, count and facet keeps only products with an active variant
(apps.catalog.selectors.products). As an EXISTS over variants that costs one index probe
per candidate product: 25,000 probes to count a browse of the whole catalog, more than the
rest of the count. The flag turns it into a column test. It changes exactly when
`facet_values` may (a variant inserted, deleted, moved, or its activity changed), so the
function that recomputes a product's search columns (catalog_refresh_search_documents,
redefined here) sets it too, and REBUILD (0008's, extended here; run by
apps.catalog.search.rebuild_search_documents) computes it for every product. Not
declared on the model, like the other search columns; SQLite (embedded mode) keeps the
EXISTS.

Indexes: the listed products in name order (the default browse order), and in category
(a category's browse and its count).
"""

from django.db import migrations

REFRESH = """
    CREATE OR REPLACE FUNCTION catalog_refresh_search_documents(products bigint[])
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM catalog_product WHERE id = ANY(products) ORDER BY id FOR UPDATE;
        UPDATE catalog_product
        SET search_document = catalog_product_search_document(id, name, description),
            facet_values = catalog_product_facet_values(id),
            on_sale = EXISTS (
                SELECT 1 FROM catalog_productvariant
                WHERE product_id = catalog_product.id AND is_active
            )
        WHERE id = ANY(products);
    END
    $$
"""

# 0008's REBUILD, also setting on_sale (skus is null exactly when no variant is active).
REBUILD = """
    WITH skus AS (
        SELECT product_id,
               string_agg(regexp_replace(sku, '[^[:alnum:]]+', ' ', 'g'), ' ' ORDER BY id) AS skus
        FROM catalog_productvariant WHERE is_active GROUP BY product_id
    ), value_names AS (
        SELECT held.product_id, string_agg(value.name, ' ' ORDER BY value.id) AS names,
               array_agg(value.id ORDER BY value.id) AS ids
        FROM (
            SELECT product_id, value_id FROM catalog_assignedproductattribute
            UNION
            SELECT variant.product_id, assigned.value_id
            FROM catalog_assignedvariantattribute assigned
            JOIN catalog_productvariant variant ON variant.id = assigned.variant_id
            WHERE variant.is_active
        ) held
        JOIN catalog_attributevalue value ON value.id = held.value_id
        GROUP BY held.product_id
    )
    UPDATE catalog_product product
    SET search_document = catalog_search_document_of(
            product.name, product.description, value_names.names, skus.skus
        ),
        facet_values = CASE
            WHEN skus.skus IS NULL THEN '{}' ELSE coalesce(value_names.ids, '{}')
        END,
        on_sale = skus.skus IS NOT NULL
    FROM catalog_product base
    LEFT JOIN skus ON skus.product_id = base.id
    LEFT JOIN value_names ON value_names.product_id = base.id
    WHERE base.id = product.id
"""

FORWARD = [
    "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS on_sale boolean NOT NULL DEFAULT false",
    REFRESH,
    # The column alone: the documents and facet values 0008 wrote stay as they are.
    "UPDATE catalog_product product SET on_sale = true WHERE EXISTS "
    "(SELECT 1 FROM catalog_productvariant WHERE product_id = product.id AND is_active)",
    "CREATE INDEX IF NOT EXISTS catalog_listed_name_idx ON catalog_product (name, id) "
    "WHERE is_active AND on_sale",
    "CREATE INDEX IF NOT EXISTS catalog_listed_category_idx ON catalog_product (category_id) "
    "WHERE is_active AND on_sale",
]

# 0008's function, without on_sale.
BACKWARD = [
    "DROP INDEX IF EXISTS catalog_listed_category_idx",
    "DROP INDEX IF EXISTS catalog_listed_name_idx",
    """
    CREATE OR REPLACE FUNCTION catalog_refresh_search_documents(products bigint[])
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM catalog_product WHERE id = ANY(products) ORDER BY id FOR UPDATE;
        UPDATE catalog_product
        SET search_document = catalog_product_search_document(id, name, description),
            facet_values = catalog_product_facet_values(id)
        WHERE id = ANY(products);
    END
    $$
    """,
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS on_sale",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARD:
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARD:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0008_search_document")]

    operations = [migrations.RunPython(forward, backward)]
