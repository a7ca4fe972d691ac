"""The shipping-zone API: catalog managers list, create, read and change zones; every bad
input is a 4xx problem and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.shipping.models import ShippingZone
from ecommerce.api.permissions import Role
from tests.catalog.asserts import assert_problem
from tests.shipping.factories import make_zone
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

ZONES = "/api/shipping-zones"
# 250 distinct two-letter codes: the most a zone may list.
MANY_CODES = [a + b for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXY"]


@pytest.fixture
def manager_client(client_for: Callable[[Any], APIClient]) -> APIClient:
    return client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))


def zone_snapshot() -> list[tuple[Any, ...]]:
    return list(
        ShippingZone.objects.order_by("pk").values_list(
            "pk", "name", "slug", "countries", "updated_at"
        )
    )


def test_a_manager_creates_a_zone_with_codes_in_any_case(manager_client):
    response = manager_client.post(
        ZONES,
        {"name": "Nordics", "slug": "nordics", "countries": ["se", "No", "FI", "dk"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/shipping-zones/nordics/"
    zone = ShippingZone.objects.get(slug="nordics")
    assert response.json() == {
        "id": zone.pk,
        "name": "Nordics",
        "slug": "nordics",
        "countries": ["DK", "FI", "NO", "SE"],
    }
    assert (zone.name, zone.countries) == ("Nordics", ["DK", "FI", "NO", "SE"])
    assert manager_client.get(f"{ZONES}/nordics").json() == response.json()


@pytest.mark.parametrize(
    ("countries", "stored"),
    [([], []), (MANY_CODES, sorted(MANY_CODES))],
    ids=["none yet", "250 countries"],
)
def test_a_zone_lists_from_no_country_up_to_250(manager_client, countries, stored):
    response = manager_client.post(
        ZONES, {"name": "Z", "slug": "z", "countries": countries}, format="json"
    )

    assert response.status_code == 201, response.content
    assert ShippingZone.objects.get(slug="z").countries == stored


def test_zones_are_listed_by_name_a_page_at_a_time(manager_client):
    make_zone("world", ["US"], name="Rest of world")
    make_zone("dach", ["DE", "AT"], name="DACH")

    response = manager_client.get(ZONES)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["count"], body["previous"], body["next"]) == (2, None, None)
    assert [(z["slug"], z["countries"]) for z in body["results"]] == [
        ("dach", ["AT", "DE"]),
        ("world", ["US"]),
    ]


def test_a_taken_slug_is_a_409_and_stores_nothing(manager_client):
    make_zone("nordics", ["SE"])
    before = zone_snapshot()

    response = manager_client.post(
        ZONES, {"name": "Other", "slug": "nordics", "countries": ["DE"]}, format="json"
    )

    body = assert_problem(response, 409, "shipping_zone_slug_taken", extra=("slug",))
    assert body["slug"] == "nordics"
    assert zone_snapshot() == before


def test_a_manager_renames_a_zone_and_replaces_its_countries(manager_client):
    make_zone("nordics", ["SE"], name="Nordics")

    renamed = manager_client.patch(f"{ZONES}/nordics", {"name": "Nordic"}, format="json")
    replaced = manager_client.patch(
        f"{ZONES}/nordics", {"countries": ["no", "se", "is"]}, format="json"
    )

    assert renamed.status_code == 200, renamed.content
    assert (renamed.json()["name"], renamed.json()["countries"]) == ("Nordic", ["SE"])
    assert (replaced.json()["name"], replaced.json()["countries"]) == ("Nordic", ["IS", "NO", "SE"])
    zone = ShippingZone.objects.get(slug="nordics")
    assert (zone.name, zone.countries) == ("Nordic", ["IS", "NO", "SE"])


def test_a_zone_keeps_its_slug(manager_client):
    make_zone("nordics", ["SE"])

    response = manager_client.patch(f"{ZONES}/nordics", {"slug": "north"}, format="json")

    assert (response.status_code, response.json()["slug"]) == (200, "nordics")
    assert list(ShippingZone.objects.values_list("slug", flat=True)) == ["nordics"]


BAD_ZONES = [
    ({"countries": "DE"}, "#/countries"),
    ({"countries": None}, "#/countries"),
    ({"countries": {"DE": True}}, "#/countries"),
    ({"countries": [49]}, "#/countries/0"),
    ({"countries": ["D1"]}, "#/countries/0"),
    ({"countries": ["DE", "FRA"]}, "#/countries/1"),
    ({"countries": ["DE", ""]}, "#/countries/1"),
    ({"countries": ["DE", "É1"]}, "#/countries/1"),
    ({"countries": ["DE", "de"]}, "#/countries"),
    ({"countries": [*MANY_CODES, "ZZ"]}, "#/countries"),
    ({"name": ""}, "#/name"),
    ({"name": 5}, "#/name"),
    ({"name": None}, "#/name"),
    ({"name": "x" * 121}, "#/name"),
]


@pytest.mark.parametrize(("change", "pointer"), BAD_ZONES)
def test_a_bad_zone_is_refused_and_stores_nothing(manager_client, change, pointer):
    make_zone("nordics", ["SE"])
    before = zone_snapshot()

    created = manager_client.post(
        ZONES, {"name": "DACH", "slug": "dach", "countries": ["DE"], **change}, format="json"
    )
    changed = manager_client.patch(f"{ZONES}/nordics", change, format="json")

    for response in (created, changed):
        body = assert_problem(response, 400, "validation_error")
        assert {error["pointer"] for error in body["errors"]} == {pointer}
    assert zone_snapshot() == before


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"name": "DACH", "slug": "no slug", "countries": ["DE"]}, {"#/slug"}),
        ({"name": "DACH", "slug": "", "countries": ["DE"]}, {"#/slug"}),
        ({"name": "DACH", "slug": "x" * 121, "countries": ["DE"]}, {"#/slug"}),
        ({"name": "DACH", "slug": "dach"}, {"#/countries"}),
        ({}, {"#/name", "#/slug", "#/countries"}),
    ],
)
def test_a_zone_is_created_whole_or_not_at_all(manager_client, body, pointers):
    response = manager_client.post(ZONES, body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert {error["pointer"] for error in problem["errors"]} == pointers
    assert not ShippingZone.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(manager_client):
    make_zone("nordics", ["SE"])
    before = zone_snapshot()

    responses = [
        manager_client.post(ZONES, ["DE"], format="json"),
        manager_client.patch(f"{ZONES}/nordics", "DE", format="json"),
        manager_client.post(ZONES, b"{", content_type="application/json"),
    ]

    for response in responses:
        assert_problem(response, 400, response.json()["code"])
    assert zone_snapshot() == before


def test_an_unknown_zone_is_a_404(manager_client):
    before = zone_snapshot()

    read = manager_client.get(f"{ZONES}/atlantis")
    changed = manager_client.patch(f"{ZONES}/atlantis", {"name": "A"}, format="json")

    for response in (read, changed):
        body = assert_problem(response, 404, "shipping_zone_not_found", extra=("zone",))
        assert body["zone"] == "atlantis"
    assert zone_snapshot() == before


def test_zones_are_for_catalog_managers_and_admins(client_for, api_client):
    make_zone("nordics", ["SE"])
    before = zone_snapshot()
    body = {"name": "DACH", "slug": "dach", "countries": ["DE"]}
    refused = {
        client_for(UserFactory(roles=[Role.CUSTOMER])): 403,
        client_for(UserFactory(roles=[Role.SUPPORT])): 403,
        api_client: 401,
    }

    for client, status in refused.items():
        assert client.get(ZONES).status_code == status
        assert client.get(f"{ZONES}/nordics").status_code == status
        assert client.post(ZONES, body, format="json").status_code == status
        assert client.patch(f"{ZONES}/nordics", {"name": "N"}, format="json").status_code == status
    assert zone_snapshot() == before

    admin = client_for(UserFactory(roles=[Role.ADMIN]))
    assert admin.post(ZONES, body, format="json").status_code == 201
    assert admin.patch(f"{ZONES}/dach", {"countries": ["AT"]}, format="json").status_code == 200
    assert admin.get(f"{ZONES}/dach").json()["countries"] == ["AT"]
