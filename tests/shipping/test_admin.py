"""Shipping methods in the admin: the list, a method with its bands inline, the same
rules as the API (amounts exact to the currency, bands for banded kinds only), and what
each role may do."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.shipping.models import ShippingMethod, ShippingRateBand, ShippingZone
from ecommerce.api.permissions import Role
from tests.shipping.factories import make_method, make_zone
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

METHODS = "/admin/shipping/shippingmethod/"


@pytest.fixture
def manager(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, roles=[Role.CATALOG_MANAGER]))
    return client


@pytest.fixture
def support(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    return client


@pytest.fixture
def germany() -> ShippingZone:
    return make_zone("germany", ["DE"], name="Germany")


def method_form(
    zone: ShippingZone, bands: Sequence[tuple[str, str, str]] = (), **fields: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "zone": str(zone.pk),
        "name": "Express",
        "kind": "weight",
        "price": "0",
        "currency": "eur",
        "free_over": "",
        "is_active": "on",
        "sort_order": "0",
        "bands-TOTAL_FORMS": str(len(bands)),
        "bands-INITIAL_FORMS": "0",
        "bands-MIN_NUM_FORMS": "0",
        "bands-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, (lower, upper, price) in enumerate(bands):
        data.update(
            {
                f"bands-{index}-lower": lower,
                f"bands-{index}-upper": upper,
                f"bands-{index}-price": price,
            }
        )
    return data


def test_the_list_shows_zone_kind_price_threshold_and_state(manager, germany):
    make_method(germany, "Standard", price="4.90", free_over="50.00")

    response = manager.get(METHODS)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ("zone", "kind", "price", "currency", "free_over", "is_active"):
        assert f"column-{column}" in html
    for shown in ("Germany", "Standard", "4.90", "50.00"):
        assert shown in html


def test_a_manager_adds_a_weight_method_with_its_bands(manager, germany):
    response = manager.post(
        f"{METHODS}add/", method_form(germany, [("0", "1000", "7.90"), ("1000", "", "12.90")])
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    method = ShippingMethod.objects.get()
    assert (method.name, method.kind, method.currency) == ("Express", "weight", "EUR")
    assert list(method.bands.order_by("lower").values_list("lower", "upper", "price")) == [
        (Decimal("0"), Decimal("1000"), Decimal("7.90")),
        (Decimal("1000"), None, Decimal("12.90")),
    ]
    assert manager.get(f"{METHODS}{method.pk}/change/").status_code == 200


@pytest.mark.parametrize(
    ("bands", "fields", "error"),
    [
        ([], {}, "A method priced by bands needs at least one band."),
        ([("0", "", "1")], {"kind": "flat", "price": "4.90"}, "A flat-rate method has no bands"),
        ([("0", "", "1")], {"price": "4.90"}, "has no price of its own"),
        ([], {"kind": "flat", "price": "4.90", "currency": "JPY"}, "no decimal places"),
        ([("0.5", "", "1")], {}, "whole number of grams"),
        ([("10", "5", "1")], {}, "must be above the lower bound"),
        ([("0", "", "1.50")], {"currency": "JPY"}, "no decimal places"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(manager, germany, bands, fields, error):
    response = manager.post(f"{METHODS}add/", method_form(germany, bands, **fields))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ShippingMethod.objects.exists()
    assert not ShippingRateBand.objects.exists()


def test_a_manager_deletes_a_band_and_a_method(manager, germany):
    method = make_method(germany, kind="weight", bands=[("0", "1000", "5"), ("1000", None, "9")])
    first, second = method.bands.order_by("lower")
    data = method_form(germany, [], name=method.name)
    data.update(
        {
            "bands-TOTAL_FORMS": "2",
            "bands-INITIAL_FORMS": "2",
            "bands-0-id": str(first.pk),
            "bands-0-method": str(method.pk),
            "bands-0-lower": "0",
            "bands-0-upper": "1000",
            "bands-0-price": "5",
            "bands-0-DELETE": "on",
            "bands-1-id": str(second.pk),
            "bands-1-method": str(method.pk),
            "bands-1-lower": "0",
            "bands-1-upper": "",
            "bands-1-price": "9",
        }
    )

    changed = manager.post(f"{METHODS}{method.pk}/change/", data)
    deleted = manager.post(f"{METHODS}{method.pk}/delete/", {"post": "yes"})

    assert changed.status_code == 302, changed.context and changed.context["errors"]
    assert deleted.status_code == 302
    assert not ShippingMethod.objects.exists()
    assert not ShippingRateBand.objects.exists()


def test_support_views_methods_but_changes_nothing(support, germany):
    method = make_method(germany, "Standard", price="4.90")

    pages = [support.get(METHODS), support.get(f"{METHODS}{method.pk}/change/")]
    posts = [
        support.post(f"{METHODS}add/", method_form(germany, [("0", "", "1")])),
        support.post(f"{METHODS}{method.pk}/delete/", {"post": "yes"}),
    ]

    assert [page.status_code for page in pages] == [200, 200]
    assert [post.status_code for post in posts] == [403, 403]
    assert list(ShippingMethod.objects.values_list("name", "price")) == [
        ("Standard", Decimal("4.90"))
    ]


def test_the_roles_that_manage_zones_manage_methods_and_bands():
    manager = UserFactory(is_staff=True, roles=[Role.CATALOG_MANAGER])
    support = UserFactory(is_staff=True, roles=[Role.SUPPORT])
    customer = UserFactory(roles=[Role.CUSTOMER])
    rights = [
        f"shipping.{verb}_{model}"
        for model in ("shippingmethod", "shippingrateband")
        for verb in ("add", "change", "delete", "view")
    ]

    assert all(manager.has_perm(right) for right in rights)
    assert manager.has_perm("shipping.change_shippingzone")
    assert [right for right in rights if support.has_perm(right)] == [
        "shipping.view_shippingmethod",
        "shipping.view_shippingrateband",
    ]
    assert not any(customer.has_perm(right) for right in rights)
