"""The address book API (/api/users/me/addresses), the login hook, and the admin inline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.users import services
from apps.users.api import TokenObtainView
from apps.users.models import Address, User
from apps.users.signals import customer_signed_in
from tests.users.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.helpers import assert_problem, error_pointers

ADDRESSES = "/api/users/me/addresses"
BERLIN = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "Friedrichstraße  123",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "de",
}
LONDON = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "10 Downing Street",
    "city": "London",
    "postal_code": "sw1a2aa",
    "country": "GB",
}
NEW_YORK = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "350 Fifth Avenue",
    "city": "New York",
    "postal_code": "10118",
    "country": "US",
    "country_area": "new york",
}


@pytest.fixture
def customer() -> User:
    return UserFactory()


@pytest.fixture
def client(client_for: Any, customer: User) -> APIClient:
    return client_for(customer)


def stored(user: User) -> list[tuple[str, bool, bool]]:
    return list(
        Address.objects.filter(user=user)
        .order_by("pk")
        .values_list("city", "is_default_shipping", "is_default_billing")
    )


# --- Create and read ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ADDRESSES, f"{ADDRESSES}/"])
def test_a_customer_adds_an_address_stored_normalized(client, customer, path):
    response = client.post(path, {**BERLIN, "is_default_shipping": True}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    entry = Address.objects.get(user=customer)
    assert response["Location"] == f"{ADDRESSES}/{entry.pk}/"
    assert body == {
        "id": entry.pk,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "",
        "street_address_1": "Friedrichstraße 123",
        "street_address_2": "",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
        "country_area": "",
        "phone": "",
        "is_default_shipping": True,
        "is_default_billing": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


@pytest.mark.django_db
def test_the_same_address_again_is_the_entry_already_there(client, customer):
    first = client.post(ADDRESSES, BERLIN, format="json").json()

    again = client.post(ADDRESSES, {**BERLIN, "city": " Berlin "}, format="json")

    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again["Location"] == f"{ADDRESSES}/{first['id']}/"
    assert Address.objects.filter(user=customer).count() == 1


@pytest.mark.django_db
def test_a_customer_lists_only_their_own_addresses(client, customer):
    services.save_address(user=customer, data=BERLIN)
    services.save_address(user=customer, data=LONDON)
    services.save_address(user=UserFactory(), data=NEW_YORK)

    response = client.get(ADDRESSES)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [entry["city"] for entry in body["results"]] == ["Berlin", "London"]


@pytest.mark.django_db
@pytest.mark.parametrize("trailing", ["", "/"])
def test_a_customer_reads_one_address(client, customer, trailing):
    entry = services.save_address(user=customer, data=NEW_YORK)

    response = client.get(f"{ADDRESSES}/{entry.pk}{trailing}")

    assert response.status_code == 200
    assert (response.json()["country_area"], response.json()["postal_code"]) == ("NY", "10118")


# --- Ownership and authentication --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("patch", {"city": "Paris"}), ("put", LONDON), ("delete", None)],
)
def test_another_customers_address_is_a_404(client, method, body):
    theirs = services.save_address(user=UserFactory(), data=BERLIN)

    response = getattr(client, method)(f"{ADDRESSES}/{theirs.pk}", body, format="json")

    assert_problem(response, 404, "address_not_found")
    theirs.refresh_from_db()
    assert theirs.city == "Berlin"


@pytest.mark.django_db
@pytest.mark.parametrize("path", [f"{ADDRESSES}/0", f"{ADDRESSES}/99999999999999999999"])
def test_an_id_that_names_nothing_is_a_404(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [("get", ADDRESSES), ("post", ADDRESSES)])
def test_anonymous_callers_are_a_401(api_client, method, path):
    response = getattr(api_client, method)(path, BERLIN, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert not Address.objects.exists()


# --- Change and delete --------------------------------------------------------------------


@pytest.mark.django_db
def test_patch_changes_the_fields_sent_and_checks_the_whole_address(client, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    response = client.patch(f"{ADDRESSES}/{entry.pk}", {"postal_code": " 10115 "}, format="json")

    assert response.status_code == 200, response.content
    entry.refresh_from_db()
    assert (entry.postal_code, entry.city, entry.country) == ("10115", "Berlin", "DE")


@pytest.mark.django_db
def test_patch_that_makes_the_address_invalid_names_the_fields(client, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    # A German postal code with a Canadian country and no province.
    response = client.patch(f"{ADDRESSES}/{entry.pk}", {"country": "CA"}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert error_pointers(body) == ["#/postal_code", "#/country_area"]
    assert [error["code"] for error in body["errors"]] == ["invalid_postal_code", "required"]
    entry.refresh_from_db()
    assert entry.country == "DE"


@pytest.mark.django_db
def test_put_replaces_the_address_and_empties_fields_left_out(client, customer):
    entry = services.save_address(user=customer, data={**BERLIN, "company": "Engines Ltd"})

    response = client.put(f"{ADDRESSES}/{entry.pk}", LONDON, format="json")

    assert response.status_code == 200, response.content
    entry.refresh_from_db()
    assert (entry.city, entry.postal_code, entry.company) == ("London", "SW1A 2AA", "")


@pytest.mark.django_db
def test_put_without_the_required_fields_is_a_400(client, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    response = client.put(f"{ADDRESSES}/{entry.pk}", {"city": "Paris"}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert error_pointers(body) == [
        "#/first_name",
        "#/last_name",
        "#/street_address_1",
        "#/country",
    ]
    entry.refresh_from_db()
    assert entry.city == "Berlin"


@pytest.mark.django_db
def test_delete_removes_the_address(client, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    response = client.delete(f"{ADDRESSES}/{entry.pk}")

    assert response.status_code == 204
    assert not Address.objects.exists()
    assert_problem(client.get(f"{ADDRESSES}/{entry.pk}"), 404, "address_not_found")


# --- Defaults and the cap -----------------------------------------------------------------


@pytest.mark.django_db
def test_one_default_of_each_kind_whatever_the_requests(client, customer):
    berlin = client.post(
        ADDRESSES, {**BERLIN, "is_default_shipping": True, "is_default_billing": True}, "json"
    ).json()
    london = client.post(ADDRESSES, {**LONDON, "is_default_shipping": True}, "json").json()
    client.patch(f"{ADDRESSES}/{london['id']}", {"is_default_billing": True}, format="json")
    client.patch(f"{ADDRESSES}/{berlin['id']}", {"is_default_shipping": True}, format="json")

    assert stored(customer) == [("Berlin", True, False), ("London", False, True)]


@pytest.mark.django_db
def test_false_clears_a_default_and_absent_leaves_it(client, customer):
    entry = services.save_address(user=customer, data=BERLIN, default_shipping=True)

    client.put(f"{ADDRESSES}/{entry.pk}", BERLIN, format="json")
    assert stored(customer) == [("Berlin", True, False)]

    client.patch(f"{ADDRESSES}/{entry.pk}", {"is_default_shipping": False}, format="json")
    assert stored(customer) == [("Berlin", False, False)]


@pytest.mark.django_db
def test_a_full_address_book_is_a_409(client, customer, settings):
    settings.ADDRESS_BOOK_MAX = 1
    services.save_address(user=customer, data=BERLIN)

    response = client.post(ADDRESSES, LONDON, format="json")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["limit"]) == ("address_book_full", 1)
    assert stored(customer) == [("Berlin", False, False)]


# --- Bad input: problem+json 400, never a 500 ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "pointer", "code"),
    [
        ({**BERLIN, "first_name": 5}, "#/first_name", "not_text"),
        ({**BERLIN, "city": ["Berlin"]}, "#/city", "not_text"),
        ({**BERLIN, "postal_code": None}, "#/postal_code", "null"),
        ({**BERLIN, "country": "DEU"}, "#/country", "invalid"),
        ({**BERLIN, "country": "ZZ"}, "#/country", "invalid_country"),
        ({**BERLIN, "postal_code": "1234"}, "#/postal_code", "invalid_postal_code"),
        ({**BERLIN, "street_address_1": "A\nB"}, "#/street_address_1", "control_characters"),
        ({**BERLIN, "company": "A\x00B"}, "#/company", "null_characters_not_allowed"),
        ({**BERLIN, "city": "x" * 101}, "#/city", "max_length"),
        ({**BERLIN, "city": "x" * 100_000}, "#/city", "max_length"),
        ({**BERLIN, "is_default_shipping": "yes"}, "#/is_default_shipping", "invalid"),
        ({**BERLIN, "is_default_billing": 1}, "#/is_default_billing", "invalid"),
        ({**NEW_YORK, "country_area": "Narnia"}, "#/country_area", "invalid_country_area"),
    ],
)  # fmt: skip
def test_bad_fields_are_a_400_naming_the_field(client, body, pointer, code):
    response = client.post(ADDRESSES, body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in problem["errors"]] == [(pointer, code)]
    assert not Address.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["[]", '"Berlin"', "5", "null", "{", '{"city": "Ber'])
def test_a_body_that_is_not_an_object_is_a_400(client, raw):
    response = client.post(ADDRESSES, raw, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not Address.objects.exists()


@pytest.mark.django_db
def test_a_patch_with_a_wrong_type_changes_nothing(client, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    response = client.patch(f"{ADDRESSES}/{entry.pk}", {"postal_code": 10115}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert error_pointers(body) == ["#/postal_code"]
    entry.refresh_from_db()
    assert entry.postal_code == "10117"


# --- The login hook -----------------------------------------------------------------------


@pytest.fixture
def sign_ins() -> Iterator[list[dict[str, Any]]]:
    """What customer_signed_in delivered while the test ran."""
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    customer_signed_in.connect(receiver, weak=False)
    yield received
    customer_signed_in.disconnect(receiver)


def log_in(client: APIClient, user: User, **extra: Any) -> Any:
    body = {"email": user.email, "password": DEFAULT_PASSWORD, **extra}
    return client.post("/api/auth/token", body, format="json")


@pytest.mark.django_db
def test_a_login_announces_the_customer_with_the_cart_token(api_client, customer, sign_ins):
    response = log_in(api_client, customer, cart_token="pV3o0kq9Vd1mZ2yJ8bQe5Xn4Ws7Hc6Tg")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert sign_ins == [
        {
            "sender": TokenObtainView,
            "signal": customer_signed_in,
            "user": customer,
            "cart_token": "pV3o0kq9Vd1mZ2yJ8bQe5Xn4Ws7Hc6Tg",
        }
    ]


@pytest.mark.django_db
def test_a_login_without_a_cart_token_announces_an_empty_one(api_client, customer, sign_ins):
    log_in(api_client, customer)

    assert [(s["user"], s["cart_token"]) for s in sign_ins] == [(customer, "")]


@pytest.mark.django_db
def test_a_refused_login_announces_nothing(api_client, customer, sign_ins):
    response = api_client.post(
        "/api/auth/token",
        {"email": customer.email, "password": "wrong-password", "cart_token": "abc"},
        format="json",
    )

    assert response.status_code == 401
    assert sign_ins == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cart_token", "code"), [(5, "not_text"), (None, "null"), ("x" * 101, "max_length")]
)
def test_a_malformed_cart_token_is_a_400_before_any_login(
    api_client, customer, sign_ins, cart_token, code
):
    response = log_in(api_client, customer, cart_token=cart_token)

    body = assert_problem(response, 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [("#/cart_token", code)]
    assert sign_ins == []


@pytest.mark.django_db
def test_a_failing_receiver_does_not_fail_the_login(api_client, customer, sign_ins, caplog):
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("cart store down")

    customer_signed_in.connect(broken, weak=False)
    try:
        response = log_in(api_client, customer, cart_token="abc")
    finally:
        customer_signed_in.disconnect(broken)

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert [s["cart_token"] for s in sign_ins] == ["abc"]
    assert "customer_signed_in_receiver_failed" in caplog.text
    assert "cart store down" in caplog.text


# --- OpenAPI ------------------------------------------------------------------------------


def test_the_schema_documents_the_address_book_and_the_cart_token():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)

    paths = schema["paths"]
    assert set(paths[f"{ADDRESSES}/"]) >= {"get", "post"}
    assert set(paths[f"{ADDRESSES}/{{id}}/"]) >= {"get", "put", "patch", "delete"}
    assert {"400", "401", "409"} <= set(paths[f"{ADDRESSES}/"]["post"]["responses"])
    login = schema["components"]["schemas"]["TokenObtainInputRequest"]
    # A blank token is allowed, by the one pattern (no second, blank-only form to clash).
    assert login["properties"]["cart_token"]["maxLength"] == 100
    assert "oneOf" not in login["properties"]["cart_token"]
    assert "cart_token" not in login.get("required", [])


# --- Admin --------------------------------------------------------------------------------


@pytest.fixture
def staff_admin(client: Client, role_groups: None) -> Client:
    staff = UserFactory(is_staff=True, roles=["admin"])
    browser = Client()
    browser.force_login(staff)
    return browser


def inline_form(user: User, entry: Address, **changes: str) -> dict[str, Any]:
    form: dict[str, Any] = {
        "email": user.email,
        "name": user.name,
        "is_active": "on",
        "addresses-TOTAL_FORMS": "1",
        "addresses-INITIAL_FORMS": "1",
        "addresses-MIN_NUM_FORMS": "0",
        "addresses-MAX_NUM_FORMS": "1000",
        "addresses-0-id": str(entry.pk),
        "addresses-0-user": str(user.pk),
        "_save": "Save",
    }
    for field in (
        "first_name",
        "last_name",
        "company",
        "street_address_1",
        "street_address_2",
        "city",
        "postal_code",
        "country",
        "country_area",
        "phone",
    ):
        form[f"addresses-0-{field}"] = changes.get(field, getattr(entry, field))
    return form


@pytest.mark.django_db
def test_staff_edit_a_customers_address_in_the_admin_normalized(staff_admin, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    page = staff_admin.get(f"/admin/users/user/{customer.pk}/change/")
    response = staff_admin.post(
        f"/admin/users/user/{customer.pk}/change/",
        inline_form(customer, entry, postal_code=" 10115 ", country="de"),
    )

    assert page.status_code == 200
    assert "Friedrichstraße 123" in page.content.decode()
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.postal_code, entry.country) == ("10115", "DE")


@pytest.mark.django_db
def test_the_admin_refuses_an_invalid_address(staff_admin, customer):
    entry = services.save_address(user=customer, data=BERLIN)

    response = staff_admin.post(
        f"/admin/users/user/{customer.pk}/change/",
        inline_form(customer, entry, postal_code="1"),
    )

    assert response.status_code == 200  # the form again, with the error
    entry.refresh_from_db()
    assert entry.postal_code == "10117"


@pytest.mark.django_db
def test_support_staff_see_addresses_but_cannot_change_them(client, customer, role_groups):
    entry = services.save_address(user=customer, data=BERLIN)
    support = UserFactory(is_staff=True, roles=["support"])
    browser = Client()
    browser.force_login(support)

    page = browser.get(f"/admin/users/user/{customer.pk}/change/")
    response = browser.post(
        f"/admin/users/user/{customer.pk}/change/",
        inline_form(customer, entry, city="Paris"),
    )

    assert page.status_code == 200
    assert "Friedrichstraße 123" in page.content.decode()
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.city == "Berlin"
