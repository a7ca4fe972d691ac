"""The categories API: the public tree, and catalog staff creating and moving categories."""

from __future__ import annotations

from typing import Any

import pytest

from apps.catalog import cache as catalog_cache
from apps.catalog.models import Category
from ecommerce import caching
from ecommerce.api.permissions import Role
from tests.catalog.asserts import assert_invalid, assert_problem, catalog_snapshot
from tests.catalog.factories import CategoryFactory, make_product
from tests.users.factories import UserFactory

CATEGORIES = "/api/categories"


def node(category: Category, *children: dict[str, Any]) -> dict[str, Any]:
    category.refresh_from_db()
    return {
        "id": category.pk,
        "name": category.name,
        "slug": category.slug,
        "is_active": category.is_active,
        "children": list(children),
    }


def make(name: str, slug: str, parent: Category | None = None, *, active: bool = True) -> Category:
    return CategoryFactory(name=name, slug=slug, parent=parent, is_active=active)


@pytest.fixture
def tree() -> dict[str, Category]:
    """Apparel > {T-shirts > Long sleeve, Socks (inactive) > Wool socks}; Home > Kitchen;
    Archive (inactive) > Old."""
    apparel = make("Apparel", "apparel")
    tshirts = make("T-shirts", "t-shirts", apparel)
    socks = make("Socks", "socks", apparel, active=False)
    home = make("Home", "home")
    archive = make("Archive", "archive", active=False)
    return {
        "apparel": apparel,
        "t-shirts": tshirts,
        "long-sleeve": make("Long sleeve", "long-sleeve", tshirts),
        "socks": socks,
        "wool-socks": make("Wool socks", "wool-socks", socks),
        "home": home,
        "kitchen": make("Kitchen", "kitchen", home),
        "archive": archive,
        "old": make("Old", "old", archive),
    }


# --- GET /api/categories --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["anonymous", "customer", "support"])
def test_the_public_tree_nests_children_and_hides_inactive_subtrees(client_of, tree, kind):
    # when
    response = client_of(kind).get(CATEGORIES)

    # then
    assert response.status_code == 200
    assert response.json() == [
        node(tree["apparel"], node(tree["t-shirts"], node(tree["long-sleeve"]))),
        node(tree["home"], node(tree["kitchen"])),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CATALOG_MANAGER, Role.ADMIN])
def test_catalog_staff_see_inactive_categories_and_their_subtrees(client_for, tree, role):
    # when
    response = client_for(UserFactory(roles=[role])).get(f"{CATEGORIES}/")

    # then
    assert response.status_code == 200
    assert response.json() == [
        node(
            tree["apparel"],
            node(tree["socks"], node(tree["wool-socks"])),
            node(tree["t-shirts"], node(tree["long-sleeve"])),
        ),
        node(tree["archive"], node(tree["old"])),
        node(tree["home"], node(tree["kitchen"])),
    ]


@pytest.mark.django_db
def test_the_tree_is_one_query_however_deep(api_client, tree, django_assert_num_queries):
    # given: two more levels under Long sleeve
    deeper = make("Deeper", "deeper", tree["long-sleeve"])
    make("Deepest", "deepest", deeper)

    # when
    with django_assert_num_queries(1):
        response = api_client.get(CATEGORIES)

    # then
    long_sleeve = response.json()[0]["children"][0]["children"][0]
    assert long_sleeve["children"][0]["slug"] == "deeper"
    assert long_sleeve["children"][0]["children"][0]["slug"] == "deepest"


@pytest.mark.django_db
def test_no_categories_is_an_empty_list(api_client):
    # when
    response = api_client.get(CATEGORIES)

    # then
    assert (response.status_code, response.json()) == (200, [])


# --- POST /api/categories -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.CATALOG_MANAGER, Role.ADMIN])
def test_catalog_staff_create_a_category_under_a_parent(client_for, tree, role):
    # when
    response = client_for(UserFactory(roles=[role])).post(
        CATEGORIES, {"name": "Outdoor", "slug": "outdoor", "parent": "home"}, format="json"
    )

    # then
    assert response.status_code == 201, response.content
    created = Category.objects.get(slug="outdoor")
    assert (created.name, created.parent, created.is_active) == ("Outdoor", tree["home"], True)
    assert response.json() == node(created)


@pytest.mark.django_db
def test_a_parent_may_be_given_by_id_and_a_category_created_inactive(manager_client, tree):
    # when
    response = manager_client.post(
        CATEGORIES,
        {"name": "Spoons", "slug": "spoons", "parent": tree["kitchen"].pk, "is_active": False},
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    created = Category.objects.get(slug="spoons")
    assert (created.parent, created.is_active) == (tree["kitchen"], False)


@pytest.mark.django_db
def test_a_duplicate_slug_is_refused_and_nothing_is_created(manager_client, tree):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(
        CATEGORIES, {"name": "Another home", "slug": "home"}, format="json"
    )

    # then
    body = assert_problem(response, 400, "invalid_category")
    assert body["detail"] == "A category with slug home already exists."
    assert catalog_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "pointer", "detail"),
    [
        (
            {"name": "Bad", "slug": "Bad Slug"},
            "#/slug",
            'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.',
        ),
        (
            {"name": "Orphan", "slug": "orphan", "parent": "nope"},
            "#/parent",
            "Unknown category: nope.",
        ),
        ({"slug": "nameless"}, "#/name", "This field is required."),
        ({"name": "", "slug": "blank"}, "#/name", "This field may not be blank."),
    ],
)
def test_a_bad_category_is_refused_with_a_pointer(manager_client, tree, body, pointer, detail):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.post(CATEGORIES, body, format="json")

    # then
    errors = assert_invalid(response, pointer)
    assert errors[0]["detail"] == detail
    assert catalog_snapshot() == before


# --- PATCH /api/categories/{slug} -----------------------------------------------------------


@pytest.mark.django_db
def test_patch_renames_and_leaves_unsent_fields_alone(manager_client, tree):
    # given: an inactive category, so a default of is_active=True would show
    archive = tree["archive"]

    # when
    response = manager_client.patch(f"{CATEGORIES}/archive", {"name": "Attic"}, format="json")

    # then
    assert response.status_code == 200, response.content
    archive.refresh_from_db()
    assert (archive.name, archive.slug, archive.parent, archive.is_active) == (
        "Attic",
        "archive",
        None,
        False,
    )
    assert response.json() == node(archive)


@pytest.mark.django_db
def test_patch_moves_a_category_under_another_and_back_to_the_root(manager_client, tree):
    # when
    moved = manager_client.patch(f"{CATEGORIES}/kitchen/", {"parent": "apparel"}, format="json")
    rooted = manager_client.patch(f"{CATEGORIES}/t-shirts", {"parent": None}, format="json")

    # then
    assert (moved.status_code, rooted.status_code) == (200, 200)
    assert Category.objects.get(slug="kitchen").parent == tree["apparel"]
    assert Category.objects.get(slug="t-shirts").parent is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slug", "parent"),
    [("apparel", "apparel"), ("apparel", "t-shirts"), ("apparel", "long-sleeve")],
)
def test_a_parent_that_would_make_a_cycle_is_refused(manager_client, tree, slug, parent):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{CATEGORIES}/{slug}", {"parent": parent}, format="json")

    # then
    body = assert_problem(response, 400, "invalid_category")
    assert body["detail"] == "A category cannot be its own ancestor."
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_patch_to_a_taken_slug_is_refused(manager_client, tree):
    # given
    before = catalog_snapshot()

    # when
    response = manager_client.patch(f"{CATEGORIES}/kitchen", {"slug": "home"}, format="json")

    # then
    assert_problem(response, 400, "invalid_category")
    assert catalog_snapshot() == before


@pytest.mark.django_db
def test_patch_of_an_unknown_category_is_a_404(manager_client, tree):
    # when
    response = manager_client.patch(f"{CATEGORIES}/nope", {"name": "X"}, format="json")

    # then
    assert_problem(response, 404, "not_found")


# --- Who may write ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("customer", 403, "permission_denied"),
        ("support", 403, "permission_denied"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", CATEGORIES, {"name": "Outdoor", "slug": "outdoor"}),
        ("patch", f"{CATEGORIES}/home", {"name": "Hijacked"}),
    ],
)
def test_only_catalog_staff_write_categories(
    client_of, tree, kind, status, code, method, path, body
):
    # given
    before = catalog_snapshot()

    # when
    response = getattr(client_of(kind), method)(path, body, format="json")

    # then
    assert_problem(response, status, code)
    assert catalog_snapshot() == before


# --- Categories in cached product reads ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # cached reads: invalidated on commit
def test_renaming_a_category_shows_in_its_products_and_keeps_the_others_cached(
    manager_client, api_client, tree
):
    # given: a tee in T-shirts and a pan in Kitchen, both details cached
    tee = make_product(sku="tee", category=tree["t-shirts"])
    pan = make_product(sku="pan", category=tree["kitchen"])
    assert api_client.get("/api/products/tee").json()["category"]["name"] == "T-shirts"
    api_client.get("/api/products/pan")
    pan_entry = caching._Store().get(catalog_cache.detail_key(pan.pk))

    # when
    response = manager_client.patch(f"{CATEGORIES}/t-shirts", {"name": "Tees"}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert api_client.get(f"/api/products/{tee.pk}").json()["category"] == {
        "id": tree["t-shirts"].pk,
        "slug": "t-shirts",
        "name": "Tees",
    }
    assert pan_entry is not None
    assert caching._Store().get(catalog_cache.detail_key(pan.pk)) == pan_entry
