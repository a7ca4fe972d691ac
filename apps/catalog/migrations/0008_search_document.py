"""The product search document, kept current by the database, and the indexes search uses.

`catalog_product.search_document` is one tsvector per product: its name (weight A), its
description (B), the names of its attribute values, product-level and of its active
variants (C), and its active variants' SKUs cut at every non-alphanumeric run (C, in the
`simple` configuration: codes are not words to stem). A stored generated column cannot
read other tables, and the variants, attribute values and the values' names all live in
other tables, so triggers keep the document current instead:

- BEFORE INSERT or UPDATE OF name, description on a product (row level) computes it;
- AFTER each statement on variants, assigned product/variant attribute values and attribute
  values (transition tables, so a bulk insert of 1,000 variants updates each of their
  products once) recompute the documents of the products the changed rows belong to. A
  variant UPDATE recomputes only when its SKU, activity or product changed: a price change
  costs a join of the statement's rows and no product row lock.

Triggers rather than calls from apps.catalog.services: every writer (services, admin,
import, a data migration, `bulk_create`, hand-written SQL) keeps the document right, and a
document that is never stale needs no reindex job. The products to recompute are locked in
id order (house rule R7) before they are updated.

The language is the text search configuration `catalog_search_config()` returns, made from
settings.SEARCH_LANGUAGE when this migration runs; queries read the same function, so the
document and the query always stem alike. To change the language on a live database, set
SEARCH_LANGUAGE and call apps.catalog.search.rebuild_search_documents().

`search_name` (a stored generated column: the name in lower case with its punctuation
dropped, `T-Shirt` -> `tshirt`) carries the trigram GIN index typo-tolerant search uses
(`word_similarity`, pg_trgm from 0002): `tshrit` shares three trigrams with `tshirt` but
none with `shirt`. Stored, not an expression index, for the reason 0005 gave: a walk of the
name index that tests each row must not compute the expression row by row.

`facet_values` (bigint[]) holds the ids of the attribute values a product offers facets
(its own and its active variants'), kept by the same triggers: a facet count without
variant-level filters then reads one row per matching product instead of joining its
variants and their values (apps.catalog.filters.facet_counts).

None of these columns is declared on the model: only the search and the facets read them. SQLite
(embedded mode) skips all this and searches by substring.
"""

from django.conf import settings
from django.db import migrations

DOCUMENT_FUNCTIONS = [
    # The document from its four texts: the one definition both the triggers (one product
    # at a time) and REBUILD (every product, set-based) use.
    """
    CREATE OR REPLACE FUNCTION catalog_search_document_of(
        name text, description text, value_names text, skus text
    ) RETURNS tsvector LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector(catalog_search_config(), coalesce(name, '')), 'A')
            || setweight(to_tsvector(catalog_search_config(), coalesce(description, '')), 'B')
            || setweight(to_tsvector(catalog_search_config(), coalesce(value_names, '')), 'C')
            || setweight(to_tsvector('simple', coalesce(skus, '')), 'C')
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION catalog_product_search_document(
        product bigint, name text, description text
    ) RETURNS tsvector LANGUAGE sql STABLE AS $$
        SELECT catalog_search_document_of(
            name,
            description,
            (
                SELECT string_agg(value.name, ' ' ORDER BY value.id)
                FROM catalog_attributevalue value
                WHERE value.id IN (
                    SELECT value_id FROM catalog_assignedproductattribute
                    WHERE product_id = product
                    UNION
                    SELECT assigned.value_id
                    FROM catalog_assignedvariantattribute assigned
                    JOIN catalog_productvariant variant ON variant.id = assigned.variant_id
                    WHERE variant.product_id = product AND variant.is_active
                )
            ),
            (
                SELECT string_agg(regexp_replace(sku, '[^[:alnum:]]+', ' ', 'g'), ' ' ORDER BY id)
                FROM catalog_productvariant
                WHERE product_id = product AND is_active
            )
        )
    $$
    """,
    # The ids of the attribute values a product offers to facets: its own, and its active
    # variants'; none while no variant is on sale.
    """
    CREATE OR REPLACE FUNCTION catalog_product_facet_values(product bigint)
    RETURNS bigint[] LANGUAGE sql STABLE AS $$
        SELECT coalesce(array_agg(held.value_id ORDER BY held.value_id), '{}')
        FROM (
            SELECT value_id FROM catalog_assignedproductattribute WHERE product_id = product
            UNION
            SELECT assigned.value_id
            FROM catalog_assignedvariantattribute assigned
            JOIN catalog_productvariant variant ON variant.id = assigned.variant_id
            WHERE variant.product_id = product AND variant.is_active
        ) held
        WHERE EXISTS (
            SELECT 1 FROM catalog_productvariant
            WHERE product_id = product AND is_active
        )
    $$
    """,
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
    """
    CREATE OR REPLACE FUNCTION catalog_product_search_document_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_document := catalog_product_search_document(
            NEW.id, NEW.name, NEW.description
        );
        RETURN NEW;
    END
    $$
    """,
    # Statement-level functions: plpgsql plans a statement when it first runs it, so a
    # branch naming a transition table its trigger lacks is never planned.
    """
    CREATE OR REPLACE FUNCTION catalog_search_variants_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM catalog_refresh_search_documents(
                ARRAY(SELECT DISTINCT product_id FROM new_rows)
            );
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM catalog_refresh_search_documents(
                ARRAY(SELECT DISTINCT product_id FROM old_rows)
            );
        ELSE
            PERFORM catalog_refresh_search_documents(ARRAY(
                SELECT DISTINCT unnest(ARRAY[n.product_id, o.product_id])
                FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE (n.sku, n.is_active, n.product_id)
                    IS DISTINCT FROM (o.sku, o.is_active, o.product_id)
            ));
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION catalog_search_product_values_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM catalog_refresh_search_documents(
                ARRAY(SELECT DISTINCT product_id FROM new_rows)
            );
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM catalog_refresh_search_documents(
                ARRAY(SELECT DISTINCT product_id FROM old_rows)
            );
        ELSE
            PERFORM catalog_refresh_search_documents(ARRAY(
                SELECT product_id FROM new_rows UNION SELECT product_id FROM old_rows
            ));
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION catalog_search_variant_values_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM catalog_refresh_search_documents(ARRAY(
                SELECT DISTINCT v.product_id FROM catalog_productvariant v
                WHERE v.id IN (SELECT variant_id FROM new_rows)
            ));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM catalog_refresh_search_documents(ARRAY(
                SELECT DISTINCT v.product_id FROM catalog_productvariant v
                WHERE v.id IN (SELECT variant_id FROM old_rows)
            ));
        ELSE
            PERFORM catalog_refresh_search_documents(ARRAY(
                SELECT DISTINCT v.product_id FROM catalog_productvariant v
                WHERE v.id IN (
                    SELECT variant_id FROM new_rows UNION SELECT variant_id FROM old_rows
                )
            ));
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION catalog_search_values_renamed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM catalog_refresh_search_documents(ARRAY(
            SELECT product_id FROM catalog_assignedproductattribute
            WHERE value_id IN (
                SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE n.name IS DISTINCT FROM o.name
            )
            UNION
            SELECT v.product_id
            FROM catalog_assignedvariantattribute assigned
            JOIN catalog_productvariant v ON v.id = assigned.variant_id
            WHERE assigned.value_id IN (
                SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE n.name IS DISTINCT FROM o.name
            )
        ));
        RETURN NULL;
    END
    $$
    """,
]


def _statement_triggers(table: str, function: str, *, events: tuple[str, ...]) -> list[str]:
    """One AFTER ... FOR EACH STATEMENT trigger per event: PostgreSQL allows transition
    tables only on single-event triggers without column lists."""
    statements = []
    for event in events:
        name = f"{table}_search_{event.lower()}"
        tables = {
            "INSERT": "NEW TABLE AS new_rows",
            "DELETE": "OLD TABLE AS old_rows",
            "UPDATE": "NEW TABLE AS new_rows OLD TABLE AS old_rows",
        }[event]
        statements += [
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    return statements


ALL_EVENTS = ("INSERT", "UPDATE", "DELETE")
TRIGGERS = [
    "DROP TRIGGER IF EXISTS catalog_product_search_document ON catalog_product",
    "CREATE TRIGGER catalog_product_search_document "
    "BEFORE INSERT OR UPDATE OF name, description ON catalog_product "
    "FOR EACH ROW EXECUTE FUNCTION catalog_product_search_document_row()",
    *_statement_triggers(
        "catalog_productvariant", "catalog_search_variants_changed", events=ALL_EVENTS
    ),
    *_statement_triggers(
        "catalog_assignedproductattribute",
        "catalog_search_product_values_changed",
        events=ALL_EVENTS,
    ),
    *_statement_triggers(
        "catalog_assignedvariantattribute",
        "catalog_search_variant_values_changed",
        events=ALL_EVENTS,
    ),
    *_statement_triggers(
        "catalog_attributevalue", "catalog_search_values_renamed", events=("UPDATE",)
    ),
]


# Every product's document in one set-based statement (the per-product function, run for
# each row, would plan its subqueries 25,000 times over).
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
        -- skus is null exactly when no variant is on sale: then no value is offered
        facet_values = CASE
            WHEN skus.skus IS NULL THEN '{}' ELSE coalesce(value_names.ids, '{}')
        END
    FROM catalog_product base
    LEFT JOIN skus ON skus.product_id = base.id
    LEFT JOIN value_names ON value_names.product_id = base.id
    WHERE base.id = product.id
"""


def config_function(language: str) -> str:
    """The function naming the search language (a validated setting: see settings.py)."""
    if not language.isascii() or not language.replace("_", "").isalpha():
        raise ValueError(f"Not a text search configuration: {language!r}")
    return (
        "CREATE OR REPLACE FUNCTION catalog_search_config() RETURNS regconfig "
        f"LANGUAGE sql IMMUTABLE AS $$ SELECT '{language}'::regconfig $$"
    )


def forward_statements() -> list[str]:
    return [
        config_function(settings.SEARCH_LANGUAGE),
        "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS search_document tsvector "
        "NOT NULL DEFAULT ''::tsvector",
        "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS facet_values bigint[] "
        "NOT NULL DEFAULT '{}'",
        "ALTER TABLE catalog_product ADD COLUMN IF NOT EXISTS search_name text "
        "GENERATED ALWAYS AS (lower(regexp_replace(name, '[^[:alnum:][:space:]]+', '', 'g'))) "
        "STORED",
        *DOCUMENT_FUNCTIONS,
        *TRIGGERS,
        REBUILD,
        "CREATE INDEX IF NOT EXISTS catalog_product_search ON catalog_product "
        "USING gin (search_document)",
        "CREATE INDEX IF NOT EXISTS catalog_product_search_name_trgm ON catalog_product "
        "USING gin (search_name gin_trgm_ops)",
        # Facets and attribute filters read assignments by attribute.
        "CREATE INDEX IF NOT EXISTS catalog_varattr_attribute_idx "
        "ON catalog_assignedvariantattribute (attribute_id, value_id, variant_id)",
        "CREATE INDEX IF NOT EXISTS catalog_prodattr_attribute_idx "
        "ON catalog_assignedproductattribute (attribute_id, value_id, product_id)",
    ]


BACKWARD = [
    "DROP INDEX IF EXISTS catalog_prodattr_attribute_idx",
    "DROP INDEX IF EXISTS catalog_varattr_attribute_idx",
    "DROP INDEX IF EXISTS catalog_product_search_name_trgm",
    "DROP INDEX IF EXISTS catalog_product_search",
    *[
        f"DROP TRIGGER IF EXISTS {table}_search_{event} ON {table}"
        for table in (
            "catalog_productvariant",
            "catalog_assignedproductattribute",
            "catalog_assignedvariantattribute",
            "catalog_attributevalue",
        )
        for event in ("insert", "update", "delete")
    ],
    "DROP TRIGGER IF EXISTS catalog_product_search_document ON catalog_product",
    "DROP FUNCTION IF EXISTS catalog_search_values_renamed()",
    "DROP FUNCTION IF EXISTS catalog_search_variant_values_changed()",
    "DROP FUNCTION IF EXISTS catalog_search_product_values_changed()",
    "DROP FUNCTION IF EXISTS catalog_search_variants_changed()",
    "DROP FUNCTION IF EXISTS catalog_product_search_document_row()",
    "DROP FUNCTION IF EXISTS catalog_refresh_search_documents(bigint[])",
    "DROP FUNCTION IF EXISTS catalog_product_facet_values(bigint)",
    "DROP FUNCTION IF EXISTS catalog_product_search_document(bigint, text, text)",
    "DROP FUNCTION IF EXISTS catalog_search_document_of(text, text, text, text)",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_name",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS facet_values",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document",
    "DROP FUNCTION IF EXISTS catalog_search_config()",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in forward_statements():
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARD:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0007_stock_leaves_the_catalog")]

    operations = [migrations.RunPython(forward, backward)]
