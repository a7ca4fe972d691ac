"""Django admin for the catalog: a product edited on one page with its variants, attribute
values and media, every write through the services; attributes and product types; what
each role may do; bad input is a form error and changes nothing."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from apps.catalog import services
from apps.catalog.media import MEDIA_ADDED
from apps.catalog.models import (
    AssignedProductAttribute,
    AssignedVariantAttribute,
    Attribute,
    AttributeValue,
    Category,
    Product,
    ProductMedia,
    ProductType,
    ProductVariant,
)
from apps.inventory.models import StockMovement
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import CategoryFactory, make_product
from tests.catalog.helpers import stock_of
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
CATEGORIES = "/admin/catalog/category/"
ATTRIBUTES = "/admin/catalog/attribute/"
TYPES = "/admin/catalog/producttype/"


# --- Helpers ---------------------------------------------------------------------------------


def messages_of(response: Any) -> list[str]:
    return [message.message for message in get_messages(response.wsgi_request)]


def _put(data: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value is False:
        return
    if value is True:
        data[name] = "on"
    elif isinstance(value, list | tuple):
        data[name] = [str(item) for item in value]
    else:
        data[name] = str(value)


def page_data(response: Any) -> dict[str, Any]:
    """What the change page would post back unchanged: the form, then each inline."""
    assert response.status_code == 200
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name in form.fields:
        _put(data, name, form[name].value())
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = str(value)
        for row in formset.forms:
            for name in row.fields:
                _put(data, row.add_prefix(name), row[name].value())
    return data


def new_row(data: dict[str, Any], prefix: str, **values: Any) -> dict[str, Any]:
    """Add one more row to an inline formset in posted data."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in values.items():
        _put(data, f"{prefix}-{index}-{name}", value)
    return data


def empty_inlines(**totals: int) -> dict[str, str]:
    data = {}
    for prefix in ("variants", "media"):
        data |= {
            f"{prefix}-TOTAL_FORMS": str(totals.get(prefix, 0)),
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return data


def catalog_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every catalog column an admin save could touch, to prove a refusal changed nothing."""
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
        "product_values": list(
            AssignedProductAttribute.objects.order_by("pk").values_list(
                "product_id", "attribute_id", "value_id"
            )
        ),
        "variant_values": list(
            AssignedVariantAttribute.objects.order_by("pk").values_list(
                "variant_id", "attribute_id", "value_id"
            )
        ),
        "values": list(AttributeValue.objects.order_by("pk").values_list("pk", "slug", "name")),
        "media": list(ProductMedia.objects.order_by("pk").values_list("pk", "alt", "sort_order")),
        "ledger": list(StockMovement.objects.order_by("pk").values_list("pk", "delta")),
    }


def png(width: int = 4, height: int = 3) -> SimpleUploadedFile:
    buffer = BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="PNG")
    return SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")


def staff(role: str) -> User:
    return UserFactory(is_staff=True, roles=[Role(role)])


@pytest.fixture(autouse=True)
def _roles_as_migrated() -> None:
    restore_role_groups()


@pytest.fixture
def boss() -> User:
    return UserFactory(
        email="boss@example.com", is_staff=True, is_superuser=True, roles=[Role.ADMIN]
    )


@pytest.fixture
def admin(client: Client, boss: User) -> Client:
    client.force_login(boss)
    return client


@pytest.fixture
def manager(client: Client) -> Client:
    client.force_login(staff("catalog_manager"))
    return client


@pytest.fixture
def tee_type() -> ProductType:
    """A T-shirt type: material per product (text), size and colour per variant, plus a
    number (chest width) and a yes/no (organic) per product."""
    size = services.create_attribute(
        name="Size",
        slug="size",
        values=[services.ValueSpec("S"), services.ValueSpec("M"), services.ValueSpec("L")],
    )
    colour = services.create_attribute(
        name="Colour",
        slug="colour",
        values=[services.ValueSpec("Black"), services.ValueSpec("White")],
    )
    material = services.create_attribute(name="Material", slug="material", input_type="text")
    width = services.create_attribute(name="Width", slug="width", input_type="number", unit="cm")
    organic = services.create_attribute(name="Organic", slug="organic", input_type="boolean")
    return services.create_product_type(
        name="T-shirt",
        slug="t-shirt",
        product_attributes=[material, width, organic],
        variant_attributes=[size, colour],
    )


@pytest.fixture
def tee(tee_type: ProductType) -> Product:
    return services.create_product(
        name="Tee",
        product_type=tee_type,
        attributes={"material": "Cotton"},
        variants=[
            services.VariantSpec(
                sku="TEE-S-BLK",
                price=Decimal("19.00"),
                name="S / Black",
                attributes={"size": "s", "colour": "black"},
                initial_stock=5,
            ),
            services.VariantSpec(
                sku="TEE-M-BLK",
                price=Decimal("21.00"),
                name="M / Black",
                attributes={"size": "m", "colour": "black"},
                initial_stock=2,
            ),
        ],
    )


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


# --- Changelist ------------------------------------------------------------------------------


@pytest.fixture
def shelf() -> dict[str, Product]:
    mugs = CategoryFactory(name="Mugs", slug="mugs")
    return {
        "mug": make_product(sku="mug-1", name="Blue Mug", price="9.50", stock=3, category=mugs),
        "wort": make_product(sku="herb-2", name="Mugwort tea", price="4.00", stock=10),
        "old": make_product(sku="old-4", name="Chipped", price="1.00", stock=2, is_active=False),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Blue Mug", "Chipped", "Mugwort tea", "Tee"]),
        ("?q=mug", ["Blue Mug", "Mugwort tea"]),
        ("?q=TEE-M", ["Tee"]),  # a variant's SKU finds its product, once
        ("?q=tee", ["Tee"]),
        ("?is_active__exact=0", ["Chipped"]),
        ("?product_type__id__exact={tee_type}", ["Tee"]),
    ],
)
def test_changelist_searches_names_and_variant_skus_and_filters(
    admin, shelf, tee, tee_type, query, expected
):
    # when
    response = admin.get(PRODUCTS + query.format(tee_type=tee_type.pk))

    # then
    assert response.status_code == 200
    assert [p.name for p in response.context["cl"].result_list] == expected


# --- The product page ------------------------------------------------------------------------


def test_change_page_shows_variants_attribute_values_and_stock_per_warehouse(admin, tee):
    # when
    response = admin.get(f"{PRODUCTS}{tee.pk}/change/")

    # then
    form = response.context["adminform"].form
    assert [name for name in form.fields if name.startswith("attr_")] == [
        "attr_material",
        "attr_organic",
        "attr_width",
    ]
    assert form["attr_material"].value() == "Cotton"
    variants, media = (inline.formset for inline in response.context["inline_admin_formsets"])
    rows = [
        (row["sku"].value(), row["attr_size"].value(), row["attr_colour"].value())
        for row in variants.forms
    ]
    assert rows == [("TEE-S-BLK", "s", "black"), ("TEE-M-BLK", "m", "black")]
    assert all(row.fields["sku"].disabled for row in variants.forms)
    assert media.forms == []
    html = response.content.decode()
    assert "Stock per warehouse" in html
    assert f"/admin/inventory/stockmovement/?variant__product__id__exact={tee.pk}" in html
    assert f"/admin/catalog/product/{tee.pk}/stock/" in html


def test_saving_the_page_unchanged_changes_nothing(admin, tee):
    # given
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    assert catalog_state() == before


def test_change_page_edits_product_variants_and_values_through_the_services(admin, tee):
    # given
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    data |= {
        "name": "Organic tee",
        "attr_material": "Linen",
        "attr_width": "52.5",
        "attr_organic": "true",
        "variants-0-price": "15.00",
        "variants-0-attr_colour": "white",
        "variants-0-name": "S / White",
        "variants-1-sku": "HIJACK",  # a saved variant's SKU cannot change
        "variants-1-is_active": "",
    }
    data.pop("variants-1-is_active")
    new_row(
        data,
        "variants",
        sku="TEE-L-BLK",
        name="L / Black",
        price="23.00",
        is_active=True,
        attr_size="l",
        attr_colour="black",
    )

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    tee.refresh_from_db()
    assert (tee.name, tee.price) == ("Organic tee", Decimal("15.00"))
    assert product_values(tee) == {"material": "Linen", "width": "52.5 cm", "organic": "Yes"}
    assert list(
        ProductVariant.objects.filter(product=tee).values_list("sku", "name", "price", "is_active")
    ) == [
        ("TEE-S-BLK", "S / White", Decimal("15.00"), True),
        ("TEE-M-BLK", "M / Black", Decimal("21.00"), False),
        ("TEE-L-BLK", "L / Black", Decimal("23.00"), True),
    ]
    assert variant_values("TEE-S-BLK") == {"size": "s", "colour": "white"}
    assert variant_values("TEE-L-BLK") == {"size": "l", "colour": "black"}
    assert stock_of(ProductVariant.objects.get(sku="TEE-L-BLK").pk) == 0


def test_add_page_creates_a_product_with_its_variants_and_values_in_one_save(admin, tee_type):
    # given: the page opened for a product type offers its attributes
    page = admin.get(f"{PRODUCTS}add/?product_type={tee_type.pk}")
    assert "attr_material" in page.context["adminform"].form.fields
    data = {
        "name": "Polo",
        "description": "Pique",
        "category": "",
        "product_type": str(tee_type.pk),
        "is_active": "on",
        "attr_material": "Pique cotton",
        **empty_inlines(variants=2),
        "variants-0-sku": "POLO-S",
        "variants-0-price": "30.00",
        "variants-0-is_active": "on",
        "variants-0-attr_size": "s",
        "variants-1-sku": "POLO-M",
        "variants-1-price": "28.00",
        "variants-1-is_active": "on",
        "variants-1-attr_size": "m",
        "variants-1-attr_colour": "white",
    }

    # when
    response = admin.post(f"{PRODUCTS}add/", data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    polo = Product.objects.get(name="Polo")
    assert (polo.description, polo.product_type, polo.price, polo.is_active) == (
        "Pique",
        tee_type,
        Decimal("28.00"),
        True,
    )
    assert product_values(polo) == {"material": "Pique cotton"}
    assert variant_values("POLO-S") == {"size": "s"}
    assert variant_values("POLO-M") == {"size": "m", "colour": "white"}
    assert not StockMovement.objects.filter(variant__product=polo).exists()


def test_add_page_without_a_variant_is_a_form_error(admin):
    # given
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}add/", {"name": "Nothing to sell", **empty_inlines()})

    # then
    assert response.status_code == 200
    (variants, _media) = response.context["inline_admin_formsets"]
    assert variants.formset.non_form_errors() == ["Please submit at least 1 form."]
    assert catalog_state() == before


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"price": "1.999"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "abc"}, "price"),
        ({"sku": "bad sku"}, "sku"),
        ({"sku": "123"}, "sku"),  # a SKU holds a letter
        ({"sku": "tee-s-blk"}, "__all__"),  # taken, in another letter case
        ({"attr_size": "xxl"}, "attr_size"),
        ({"weight_grams": "-3"}, "weight_grams"),
    ],
)
def test_a_bad_new_variant_is_a_form_error_and_nothing_changes(admin, tee, row, field):
    # given
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    new_row(data, "variants", **({"sku": "TEE-XL", "price": "20.00", "is_active": True} | row))
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 200
    (variants, _media) = response.context["inline_admin_formsets"]
    assert list(variants.formset.errors[2]) == [field]
    assert catalog_state() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"attr_width": "1e15"}, "attr_width"),
        ({"attr_width": "1.1234567"}, "attr_width"),
        ({"attr_organic": "maybe"}, "attr_organic"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_product_value_is_a_form_error_and_nothing_changes(admin, tee, changes, field):
    # given
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/")) | changes
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert catalog_state() == before


def test_two_new_variants_sharing_a_sku_are_refused(admin, tee):
    # given
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    new_row(data, "variants", sku="TEE-XL", price="20.00", is_active=True)
    new_row(data, "variants", sku="tee-xl", price="20.00", is_active=True)
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 200
    (variants, _media) = response.context["inline_admin_formsets"]
    assert variants.formset.non_form_errors() == ["Two variants share the SKU tee-xl."]
    assert catalog_state() == before


# --- Media -----------------------------------------------------------------------------------


def test_an_image_uploaded_on_the_page_goes_through_add_media(admin, tee, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = str(tmp_path)
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    new_row(data, "media", alt="Front")
    data["media-0-image"] = png(8, 6)

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    (image,) = ProductMedia.objects.filter(product=tee)
    assert (image.alt, image.width, image.height, image.content_type) == (
        "Front",
        8,
        6,
        "image/png",
    )
    assert image.image.name.endswith(".png")
    assert (tmp_path / image.image.name).exists()
    assert OutboxMessage.objects.filter(topic=MEDIA_ADDED, payload={"media_id": image.pk}).exists()

    # and when: its alt text changes, then it is deleted
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    data["media-0-alt"] = "Front view"
    admin.post(f"{PRODUCTS}{tee.pk}/change/", data)
    assert ProductMedia.objects.get(pk=image.pk).alt == "Front view"
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/")) | {"media-0-DELETE": "on"}
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)
    assert response.status_code == 302
    assert not ProductMedia.objects.filter(product=tee).exists()


def test_a_file_that_is_not_an_image_is_a_form_error(admin, tee, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = str(tmp_path)
    data = page_data(admin.get(f"{PRODUCTS}{tee.pk}/change/"))
    new_row(data, "media", alt="Not a picture")
    data["media-0-image"] = SimpleUploadedFile("evil.png", b"<?php echo 1; ?>", "image/png")
    before = catalog_state()

    # when
    response = admin.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 200
    (_variants, media) = response.context["inline_admin_formsets"]
    assert media.formset.errors[0] == {"image": ["The file is not a JPEG, PNG, WebP or GIF image."]}
    assert catalog_state() == before
    assert list(tmp_path.rglob("*.*")) == []


# --- Actions ---------------------------------------------------------------------------------


def test_deactivate_and_activate_say_what_they_did_and_what_they_left(admin, shelf):
    # when
    off = admin.post(
        PRODUCTS,
        {"action": "deactivate", "index": "0", "_selected_action": [shelf["mug"].pk]},
    )
    on = admin.post(
        PRODUCTS,
        {
            "action": "activate",
            "index": "0",
            "_selected_action": [shelf["old"].pk, shelf["wort"].pk],
        },
    )

    # then
    assert (off.status_code, on.status_code) == (302, 302)
    assert dict(Product.objects.values_list("name", "is_active")) == {
        "Blue Mug": False,
        "Mugwort tea": True,
        "Chipped": True,
    }
    assert messages_of(on) == [
        "Deactivated 1 product(s): Blue Mug.",
        "Activated 1 product(s): Chipped.",
        "Product Mugwort tea: already active, left as it was.",
    ]


def test_products_cannot_be_deleted_in_the_admin(admin, shelf):
    # given
    mug = shelf["mug"]

    # when
    page = admin.get(f"{PRODUCTS}{mug.pk}/delete/")
    post = admin.post(f"{PRODUCTS}{mug.pk}/delete/", {"post": "yes"})
    changelist = admin.get(PRODUCTS)

    # then
    assert (page.status_code, post.status_code) == (403, 403)
    actions = [name for name, _label in changelist.context["action_form"].fields["action"].choices]
    assert actions == ["", "activate", "deactivate"]
    assert Product.objects.filter(pk=mug.pk).exists()


# --- Roles -----------------------------------------------------------------------------------


def test_a_catalog_manager_edits_a_product_page(manager, tee):
    # given
    data = page_data(manager.get(f"{PRODUCTS}{tee.pk}/change/"))
    data["variants-1-price"] = "25.00"

    # when
    response = manager.post(f"{PRODUCTS}{tee.pk}/change/", data)

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    assert ProductVariant.objects.get(sku="TEE-M-BLK").price == Decimal("25.00")


def test_support_sees_the_product_page_read_only_and_cannot_save(client, tee):
    # given
    client.force_login(staff("support"))
    before = catalog_state()

    # when
    page = client.get(f"{PRODUCTS}{tee.pk}/change/")
    post = client.post(f"{PRODUCTS}{tee.pk}/change/", {"name": "Hacked", **empty_inlines()})
    add = client.get(f"{PRODUCTS}add/")

    # then
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    html = page.content.decode()
    assert 'name="name"' not in html
    assert 'name="variants-0-price"' not in html
    assert "TEE-M-BLK" in html
    assert f"/admin/catalog/product/{tee.pk}/stock/" not in html  # no stock form link
    assert (post.status_code, add.status_code) == (403, 403)
    assert catalog_state() == before


@pytest.mark.parametrize("path", [ATTRIBUTES, TYPES, "/admin/catalog/productvariant/"])
def test_support_cannot_add_attributes_or_types(client, path):
    # given
    client.force_login(staff("support"))

    # when
    response = client.get(f"{path}add/")

    # then: product variants have no admin page of their own (they live on the product's)
    assert response.status_code in (403, 404)


# --- Attributes and product types --------------------------------------------------------------


def value_rows(*rows: tuple[str, str], initial: int = 0) -> dict[str, str]:
    data = {
        "values-TOTAL_FORMS": str(len(rows)),
        "values-INITIAL_FORMS": str(initial),
        "values-MIN_NUM_FORMS": "0",
        "values-MAX_NUM_FORMS": "1000",
    }
    for index, (name, slug) in enumerate(rows):
        data |= {f"values-{index}-name": name, f"values-{index}-slug": slug}
    return data


def test_a_manager_adds_an_attribute_with_values_then_more_values(manager):
    # when
    added = manager.post(
        f"{ATTRIBUTES}add/",
        {
            "name": "Fit",
            "slug": "fit",
            "input_type": "choice",
            "unit": "",
            "filterable": "on",
            **value_rows(("Slim", "slim"), ("Regular", "regular")),
        },
    )
    fit = Attribute.objects.get(slug="fit")
    data = page_data(manager.get(f"{ATTRIBUTES}{fit.pk}/change/")) | {"name": "Cut"}
    new_row(data, "values", name="Loose", slug="loose")
    changed = manager.post(f"{ATTRIBUTES}{fit.pk}/change/", data)

    # then
    assert (added.status_code, changed.status_code) == (302, 302)
    fit.refresh_from_db()
    assert (fit.name, fit.input_type, fit.filterable) == ("Cut", "choice", True)
    assert list(fit.values.values_list("slug", "name", "sort_order")) == [
        ("slim", "Slim", 0),
        ("regular", "Regular", 1),
        ("loose", "Loose", 2),
    ]


def test_a_value_slug_twice_or_taken_is_a_form_error(admin, tee_type):
    # given
    size = Attribute.objects.get(slug="size")
    data = page_data(admin.get(f"{ATTRIBUTES}{size.pk}/change/"))
    new_row(data, "values", name="Medium", slug="m")
    before = catalog_state()

    # when
    response = admin.post(f"{ATTRIBUTES}{size.pk}/change/", data)

    # then
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors[3] == {"__all__": ["Please correct the duplicate values below."]}
    assert catalog_state() == before


def test_an_attribute_slug_and_type_are_fixed_once_created(admin, tee_type):
    # given
    size = Attribute.objects.get(slug="size")
    data = page_data(admin.get(f"{ATTRIBUTES}{size.pk}/change/"))

    # when
    response = admin.post(
        f"{ATTRIBUTES}{size.pk}/change/", data | {"slug": "other", "input_type": "text"}
    )

    # then
    assert response.status_code == 302
    size.refresh_from_db()
    assert (size.slug, size.input_type) == ("size", "choice")


def test_a_product_type_is_made_and_changed_through_the_services(manager, tee, tee_type):
    # given
    material = Attribute.objects.get(slug="material")
    size = Attribute.objects.get(slug="size")

    # when: the type stops declaring material
    data = page_data(manager.get(f"{TYPES}{tee_type.pk}/change/"))
    data["product_attributes"] = [
        str(a.pk) for a in tee_type.product_attributes.exclude(slug="material")
    ]
    changed = manager.post(f"{TYPES}{tee_type.pk}/change/", data)
    added = manager.post(
        f"{TYPES}add/",
        {"name": "Mug", "slug": "mug", "tax_class": "reduced", "product_attributes": [material.pk]},
    )

    # then: its products lose their material value
    assert (changed.status_code, added.status_code) == (302, 302)
    assert product_values(tee) == {}
    mug = ProductType.objects.get(slug="mug")
    assert mug.tax_class == "reduced"
    assert list(mug.product_attributes.all()) == [material]
    assert list(mug.variant_attributes.all()) == []
    assert size in tee_type.variant_attributes.all()


def test_an_attribute_at_both_levels_is_a_form_error(admin, tee_type):
    # given
    size = Attribute.objects.get(slug="size")

    # when
    response = admin.post(
        f"{TYPES}add/",
        {
            "name": "Sock",
            "slug": "sock",
            "tax_class": "standard",
            "product_attributes": [size.pk],
            "variant_attributes": [size.pk],
        },
    )

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "__all__": ["An attribute is for products or for variants, not both: Size."]
    }
    assert not ProductType.objects.filter(slug="sock").exists()


# --- Categories --------------------------------------------------------------------------------


def test_category_add_form_creates_a_category_through_the_service(admin):
    # given
    mugs = CategoryFactory(name="Mugs", slug="mugs")

    # when
    response = admin.post(
        f"{CATEGORIES}add/",
        {"name": "Travel mugs", "slug": "travel-mugs", "parent": mugs.pk, "is_active": "on"},
    )

    # then
    assert response.status_code == 302, response.context and response.context["errors"]
    created = Category.objects.get(slug="travel-mugs")
    assert (created.name, created.parent, created.is_active) == ("Travel mugs", mugs, True)


@pytest.mark.parametrize("parent", ["self", "child", "grandchild"])
def test_category_change_form_refuses_a_cycle_as_a_form_error(admin, parent):
    # given: Home > Kitchen > Knives
    home = CategoryFactory(name="Home", slug="home")
    kitchen = CategoryFactory(name="Kitchen", slug="kitchen", parent=home)
    knives = CategoryFactory(name="Knives", slug="knives", parent=kitchen)
    chosen = {"self": home, "child": kitchen, "grandchild": knives}[parent]

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
    assert Category.objects.get(pk=home.pk).parent is None
