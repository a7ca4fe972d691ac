"""Django admin for the catalog: search and filters, the read-only ledger, stock through the
service (the restock action), activate/deactivate, and no deleting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.catalog import services
from apps.catalog.models import Category, Product, StockMovement
from apps.users.models import User
from ecommerce.api.permissions import Role
from tests.catalog.asserts import catalog_snapshot, ledger_rows
from tests.catalog.factories import CategoryFactory, make_product
from tests.catalog.helpers import assert_ledger_matches
from tests.users.factories import UserFactory

PRODUCTS = "/admin/catalog/product/"
CATEGORIES = "/admin/catalog/category/"
# The ledger inline's formset, empty: the inline offers no row to add or change.
NO_LEDGER_FORMS = {"movements-TOTAL_FORMS": "0", "movements-INITIAL_FORMS": "0"}


def listed(response: Any) -> list[str]:
    assert response.status_code == 200
    return sorted(product.sku for product in response.context["cl"].result_list)


def messages_of(response: Any) -> list[str]:
    return [message.message for message in get_messages(response.wsgi_request)]


def product_form(product: Product | None = None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sku": "lamp-1",
        "name": "Desk lamp",
        "description": "LED",
        "price": "39.90",
        "category": "",
        "is_active": "on",
        **NO_LEDGER_FORMS,
    }
    if product is not None:
        data |= {
            "sku": product.sku,
            "name": product.name,
            "description": product.description,
            "price": str(product.price),
            "category": product.category_id or "",
        }
    return {key: value for key, value in (data | overrides).items() if value is not None}


@pytest.fixture
def boss() -> User:
    return UserFactory(
        email="boss@example.com", is_staff=True, is_superuser=True, roles=[Role.ADMIN]
    )


@pytest.fixture
def admin(client: Client, boss: User) -> Client:
    """A client logged into the admin as a staff superuser."""
    client.force_login(boss)
    return client


@pytest.fixture
def mugs() -> Category:
    return CategoryFactory(name="Mugs", slug="mugs")


@pytest.fixture
def shelf(mugs: Category) -> dict[str, Product]:
    return {
        "mug": make_product(sku="mug-1", name="Blue Mug", price="9.50", stock=3, category=mugs),
        "wort": make_product(sku="herb-2", name="Mugwort tea", price="4.00", stock=10),
        "pot": make_product(sku="pot-3", name="Teapot", price="35.00", stock=0, category=mugs),
        "old": make_product(sku="old-4", name="Chipped", price="1.00", stock=2, is_active=False),
    }


# --- Changelist ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["herb-2", "mug-1", "old-4", "pot-3"]),
        ("?q=mug", ["herb-2", "mug-1"]),
        ("?q=POT-3", ["pot-3"]),
        ("?q=nothing", []),
        ("?is_active__exact=0", ["old-4"]),
        ("?is_active__exact=1", ["herb-2", "mug-1", "pot-3"]),
        ("?category__id__exact={mugs}", ["mug-1", "pot-3"]),
        ("?category__id__exact={mugs}&q=blue", ["mug-1"]),
    ],
)
def test_changelist_searches_sku_and_name_and_filters(admin, shelf, mugs, query, expected):
    # when
    response = admin.get(PRODUCTS + query.format(mugs=mugs.pk))

    # then
    assert listed(response) == expected


# --- Change page and its read-only ledger -------------------------------------------------------


@pytest.mark.django_db
def test_change_page_shows_the_ledger_read_only_newest_first(admin, shelf, boss):
    # given
    mug = shelf["mug"]
    services.restock(product_id=mug.pk, quantity=5, note="delivery 7", actor=boss)

    # when
    response = admin.get(f"{PRODUCTS}{mug.pk}/change/")

    # then
    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert (inline.has_add_permission, inline.has_change_permission) == (False, False)
    assert inline.formset.can_delete is False
    rows = [(form.instance.delta, form.instance.note) for form in inline.formset.forms]
    assert rows == [(5, "delivery 7"), (3, "initial stock")]
    html = response.content.decode()
    assert "delivery 7" in html
    assert 'name="movements-0-delta"' not in html
    assert 'name="movements-0-note"' not in html
    assert 'name="stock"' not in html


@pytest.mark.django_db
def test_change_form_saves_through_the_service_and_never_touches_sku_or_stock(admin, shelf):
    # given
    mug = shelf["mug"]
    ledger_before = ledger_rows(mug)

    # when
    response = admin.post(
        f"{PRODUCTS}{mug.pk}/change/",
        product_form(mug, name="Big Blue Mug", price="12.00", sku="hijack", stock="999"),
    )

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    mug.refresh_from_db()
    assert (mug.sku, mug.name, mug.price, mug.stock) == (
        "mug-1",
        "Big Blue Mug",
        Decimal("12.00"),
        3,
    )
    assert ledger_rows(mug) == ledger_before


# --- Add form --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_form_creates_a_product_with_no_stock(admin, mugs, settings):
    # given
    settings.STORE_CURRENCY = "GBP"

    # when
    response = admin.post(f"{PRODUCTS}add/", product_form(category=mugs.pk, stock="50"))

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    product = Product.objects.get(sku="lamp-1")
    assert (
        product.name,
        product.description,
        product.price,
        product.currency,
        product.category,
        product.is_active,
        product.stock,
    ) == ("Desk lamp", "LED", Decimal("39.90"), "GBP", mugs, True, 0)
    assert ledger_rows(product) == []
    assert response["Location"] == PRODUCTS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "1.999"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "abc"}, "price"),
        ({"sku": "bad sku"}, "sku"),
        ({"sku": "MUG-1"}, "__all__"),  # taken, in another letter case
        ({"name": ""}, "name"),
    ],
)
def test_add_form_refuses_a_bad_product_and_creates_nothing(admin, shelf, overrides, field):
    # given
    before = catalog_snapshot()

    # when
    response = admin.post(f"{PRODUCTS}add/", product_form(**overrides))

    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert catalog_snapshot() == before


# --- The restock action -------------------------------------------------------------------------


@pytest.mark.django_db
def test_restock_action_first_asks_for_quantity_and_note(admin, shelf):
    # given
    before = catalog_snapshot()
    chosen = [shelf["mug"].pk, shelf["pot"].pk]

    # when
    response = admin.post(PRODUCTS, {"action": "restock", "index": "0", "_selected_action": chosen})

    # then
    assert response.status_code == 200
    assert "admin/catalog/product/restock.html" in [t.name for t in response.templates]
    assert sorted(p.sku for p in response.context["products"]) == ["mug-1", "pot-3"]
    assert set(response.context["form"].fields) == {"quantity", "note"}
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_restock_action_writes_one_ledger_row_per_product_with_note_and_actor(admin, shelf, boss):
    # given
    mug, pot = shelf["mug"], shelf["pot"]

    # when: the intermediate form posts back without `index`
    response = admin.post(
        PRODUCTS,
        {
            "action": "restock",
            "_selected_action": [mug.pk, pot.pk],
            "apply": "Restock",
            "quantity": "4",
            "note": "PO-17",
        },
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == ["Restocked 2 product(s)."]
    assert ledger_rows(mug) == [(3, 3, "restock", "initial stock"), (4, 7, "restock", "PO-17")]
    assert ledger_rows(pot) == [(4, 4, "restock", "PO-17")]
    assert list(StockMovement.objects.filter(note="PO-17").values_list("actor_id", flat=True)) == [
        boss.pk,
        boss.pk,
    ]
    assert Product.objects.get(pk=shelf["wort"].pk).stock == 10
    assert_ledger_matches(mug.pk, pot.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "invalid"),
    [
        ({"quantity": "0", "note": "PO-1"}, "quantity"),
        ({"quantity": "-5", "note": "PO-1"}, "quantity"),
        ({"quantity": "abc", "note": "PO-1"}, "quantity"),
        ({"quantity": "4"}, "note"),
        ({"quantity": "4", "note": ""}, "note"),
    ],
)
def test_restock_action_with_a_bad_form_shows_it_again_and_changes_nothing(
    admin, shelf, fields, invalid
):
    # given
    before = catalog_snapshot()

    # when
    response = admin.post(
        PRODUCTS,
        {"action": "restock", "_selected_action": [shelf["mug"].pk], "apply": "1", **fields},
    )

    # then
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [invalid]
    assert catalog_snapshot() == before


# --- Activate and deactivate ------------------------------------------------------------------


@pytest.mark.django_db
def test_deactivate_and_activate_actions(admin, shelf):
    # when
    off = admin.post(
        PRODUCTS,
        {
            "action": "deactivate",
            "index": "0",
            "_selected_action": [shelf["mug"].pk, shelf["pot"].pk],
        },
    )
    on = admin.post(
        PRODUCTS, {"action": "activate", "index": "0", "_selected_action": [shelf["old"].pk]}
    )

    # then
    assert (off.status_code, on.status_code) == (302, 302)
    assert dict(Product.objects.values_list("sku", "is_active")) == {
        "mug-1": False,
        "herb-2": True,
        "pot-3": False,
        "old-4": True,
    }
    assert messages_of(on) == ["Deactivated 2 product(s).", "Activated 1 product(s)."]
    assert Product.objects.get(sku="mug-1").stock == 3


# --- No deleting --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_products_cannot_be_deleted_in_the_admin(admin, shelf):
    # given
    mug = shelf["mug"]
    before = catalog_snapshot()

    # when
    page = admin.get(f"{PRODUCTS}{mug.pk}/delete/")
    post = admin.post(f"{PRODUCTS}{mug.pk}/delete/", {"post": "yes"})
    changelist = admin.get(PRODUCTS)

    # then
    assert (page.status_code, post.status_code) == (403, 403)
    actions = [name for name, _label in changelist.context["action_form"].fields["action"].choices]
    assert actions == ["", "activate", "deactivate", "restock"]
    assert admin.get(f"{PRODUCTS}{mug.pk}/change/").context["has_delete_permission"] is False
    assert catalog_snapshot() == before


# --- Categories ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_category_changelist_searches_and_filters(admin, mugs):
    # given
    CategoryFactory(name="Teas", slug="teas", is_active=False)

    # when
    searched = admin.get(f"{CATEGORIES}?q=mug")
    inactive = admin.get(f"{CATEGORIES}?is_active__exact=0")

    # then
    assert [c.slug for c in searched.context["cl"].result_list] == ["mugs"]
    assert [c.slug for c in inactive.context["cl"].result_list] == ["teas"]


@pytest.mark.django_db
def test_category_add_form_creates_a_category_through_the_service(admin, mugs):
    # when
    response = admin.post(
        f"{CATEGORIES}add/",
        {"name": "Travel mugs", "slug": "travel-mugs", "parent": mugs.pk, "is_active": "on"},
    )

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    created = Category.objects.get(slug="travel-mugs")
    assert (created.name, created.parent, created.is_active) == ("Travel mugs", mugs, True)


@pytest.mark.django_db
@pytest.mark.parametrize("parent", ["self", "child", "grandchild"])
def test_category_change_form_refuses_a_cycle_as_a_form_error(admin, parent):
    # given: Home > Kitchen > Knives
    home = CategoryFactory(name="Home", slug="home")
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", parent=home)
    knives = CategoryFactory(name="Knives", slug="knives", parent=kitchen)
    chosen = {"self": home, "child": kitchen, "grandchild": knives}[parent]
    before = catalog_snapshot()

    # when
    response = admin.post(
        f"{CATEGORIES}{home.pk}/change/",
        {"name": "Home", "slug": "home", "parent": chosen.pk, "is_active": "on"},
    )

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "parent": ["A category cannot be its own ancestor."]
    }
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_categories_cannot_be_deleted_in_the_admin(admin, mugs):
    # when
    response = admin.post(f"{CATEGORIES}{mugs.pk}/delete/", {"post": "yes"})

    # then
    assert response.status_code == 403
    assert Category.objects.filter(pk=mugs.pk).exists()
