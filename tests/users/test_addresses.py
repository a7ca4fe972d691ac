"""Address validation per country, and the address book's services (cap, defaults, races)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.users import selectors, services
from apps.users.addresses import (
    ADDRESS_FIELDS,
    COUNTRY_CODES,
    MAX_LENGTHS,
    AddressBookFull,
    AddressInvalid,
    AddressNotFound,
    validate_address,
)
from apps.users.models import Address
from ecommerce.api.exceptions import problem_exception_handler
from ecommerce.errors import InvalidInput
from tests.inventory.threads import run_at_once
from tests.users.factories import UserFactory

BASE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_address_1": "12 Analytical Row",
    "city": "Somewhere",
}


def address(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


# --- Valid addresses, per country: (country, postal code typed, stored, region typed, stored)

VALID = [
    ("DE", "10115", "10115", "", ""),
    ("de", " 10115 ", "10115", "", ""),
    ("AT", "1010", "1010", "", ""),
    ("CH", "8001", "8001", "", ""),
    ("FR", "75001", "75001", "", ""),
    ("ES", "28013", "28013", "", ""),
    ("IT", "00184", "00184", "", ""),
    ("BE", "1000", "1000", "", ""),
    ("DK", "2100", "2100", "", ""),
    ("NL", "1234AB", "1234 AB", "", ""),
    ("NL", "1234 ab", "1234 AB", "", ""),
    ("PL", "00950", "00-950", "", ""),
    ("PL", "00-950", "00-950", "", ""),
    ("SE", "11455", "114 55", "", ""),
    ("SE", "114 55", "114 55", "", ""),
    ("GB", "sw1a1aa", "SW1A 1AA", "", ""),
    ("GB", "M1 1AE", "M1 1AE", "", ""),
    ("GB", "ec1a 1bb", "EC1A 1BB", "", ""),
    ("GB", "GIR 0AA", "GIR 0AA", "", ""),
    ("US", "94105", "94105", "CA", "CA"),
    ("US", "94105-1234", "94105-1234", "california", "CA"),
    ("US", "941051234", "94105-1234", "New  York", "NY"),
    ("CA", "k1a0b1", "K1A 0B1", "ON", "ON"),
    ("CA", "H2X 1Y4", "H2X 1Y4", "Quebec", "QC"),
    ("JP", "1000001", "100-0001", "Tokyo", "Tokyo"),
    ("JP", "100-0001", "100-0001", "Tokyo", "Tokyo"),
    ("IE", "", "", "", ""),  # Eircodes are optional
    ("IE", "d02x285", "D02 X285", "", ""),
    ("LV", "1010", "LV-1010", "", ""),
    ("HK", "", "", "", ""),  # no postal codes
    ("NG", "100001", "100001", "", ""),  # no format on file: any plain code
]


@pytest.mark.parametrize(("country", "typed", "stored", "area", "stored_area"), VALID)
def test_valid_addresses_are_normalized(country, typed, stored, area, stored_area):
    result = validate_address(address(country=country, postal_code=typed, country_area=area))

    assert result["postal_code"] == stored
    assert result["country"] == country.strip().upper()
    assert result["country_area"] == stored_area
    assert set(result) == set(ADDRESS_FIELDS)


@pytest.mark.parametrize(("country", "typed", "stored", "area", "stored_area"), VALID)
def test_a_normalized_address_validates_to_itself(country, typed, stored, area, stored_area):
    once = validate_address(address(country=country, postal_code=typed, country_area=area))

    assert validate_address(once) == once


# --- Invalid addresses: (country, postal code, region, other fields, {field: code})

POSTAL = {"postal_code": "invalid_postal_code"}
INVALID = [
    ("DE", "1011", "", {}, POSTAL),
    ("DE", "101155", "", {}, POSTAL),
    ("DE", "ABCDE", "", {}, POSTAL),
    ("DE", "", "", {}, {"postal_code": "required"}),
    ("FR", "7500", "", {}, POSTAL),
    ("ES", "53001", "", {}, POSTAL),
    ("AT", "0123", "", {}, POSTAL),
    ("CH", "80011", "", {}, POSTAL),
    ("DK", "210", "", {}, POSTAL),
    ("NL", "0123 AB", "", {}, POSTAL),
    ("NL", "1234", "", {}, POSTAL),
    ("PL", "00-95", "", {}, POSTAL),
    ("SE", "01234", "", {}, POSTAL),
    ("GB", "SW1A", "", {}, POSTAL),
    ("GB", "12345", "", {}, POSTAL),
    ("JP", "100-001", "Tokyo", {}, POSTAL),
    ("JP", "100-0001", "", {}, {"country_area": "required"}),
    ("US", "9410", "CA", {}, POSTAL),
    ("US", "94105-12", "CA", {}, POSTAL),
    ("US", "94105", "", {}, {"country_area": "required"}),
    ("US", "94105", "Narnia", {}, {"country_area": "invalid_country_area"}),
    ("CA", "123 456", "ON", {}, POSTAL),
    ("CA", "D1A 0B1", "ON", {}, POSTAL),
    ("IE", "12345", "", {}, POSTAL),
    ("HK", "#1", "", {}, POSTAL),
    ("XX", "", "", {}, {"country": "invalid_country"}),
    ("UK", "", "", {}, {"country": "invalid_country"}),
    ("DEU", "", "", {}, {"country": "max_length"}),
    ("", "", "", {}, {"country": "required"}),
    ("DE", "10115", "", {"phone": "call me"}, {"phone": "invalid_phone"}),
    ("DE", "10115", "", {"phone": "12"}, {"phone": "invalid_phone"}),
]


@pytest.mark.parametrize(("country", "postal_code", "area", "other", "codes"), INVALID)
def test_invalid_addresses_name_each_field_and_why(country, postal_code, area, other, codes):
    fields = address(country=country, postal_code=postal_code, country_area=area, **other)

    with pytest.raises(AddressInvalid) as caught:
        validate_address(fields)

    assert caught.value.codes == codes
    assert set(caught.value.extra["errors"]) == set(codes)


def test_every_missing_required_field_is_named():
    with pytest.raises(AddressInvalid) as caught:
        validate_address({"country": "US"})

    assert caught.value.codes == {
        "first_name": "required",
        "last_name": "required",
        "street_address_1": "required",
        "city": "required",
        "postal_code": "required",
        "country_area": "required",
    }


def test_text_is_trimmed_with_inner_spaces_collapsed_and_composed():
    result = validate_address(
        {
            "first_name": "  Zoë  ",  # decomposed: o + combining diaeresis
            "last_name": "de   la  Cruz",
            "street_address_1": "  Friedrichstraße 123 ",
            "city": "Berlin",
            "postal_code": "10117",
            "country": " de ",
            "company": "",
            "phone": " +49 (30)  123-4567 ",
        }
    )

    assert result == {
        "first_name": "Zoë",
        "last_name": "de la Cruz",
        "company": "",
        "street_address_1": "Friedrichstraße 123",
        "street_address_2": "",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
        "country_area": "",
        "phone": "+49 (30) 123-4567",
    }


@pytest.mark.parametrize(
    "value", ["Main\x00St", "Main\nSt", "Main\tSt", "Main\x1bSt", "Main\u202eSt", "\ud800"]
)
def test_control_characters_are_refused(value):
    with pytest.raises(AddressInvalid) as caught:
        validate_address(address(country="DE", postal_code="10115", street_address_1=value))

    assert caught.value.codes == {"street_address_1": "control_characters"}


@pytest.mark.parametrize("field", ["first_name", "street_address_2", "city", "company", "phone"])
def test_every_field_has_a_length_limit(field):
    limit = MAX_LENGTHS[field]
    long = "1" * (limit + 1) if field == "phone" else "a" * (limit + 1)

    with pytest.raises(AddressInvalid) as caught:
        validate_address(address(country="DE", postal_code="10115", **{field: long}))

    assert caught.value.codes == {field: "max_length"}


def test_a_huge_value_is_refused_without_reading_it():
    with pytest.raises(AddressInvalid) as caught:
        validate_address(address(country="DE", postal_code="10115", city="x" * 10_000_000))

    assert caught.value.codes == {"city": "max_length"}


@pytest.mark.parametrize("value", [5, 1.5, True, ["Berlin"], {"name": "Berlin"}])
def test_values_that_are_not_text_are_refused(value):
    with pytest.raises(AddressInvalid) as caught:
        validate_address(address(country="DE", postal_code="10115", city=value))

    assert caught.value.codes == {"city": "not_text"}


def test_none_is_an_empty_field_and_unknown_keys_are_ignored():
    result = validate_address(
        address(country="DE", postal_code="10115", company=None, is_admin=True)
    )

    assert result["company"] == ""
    assert "is_admin" not in result


def test_every_iso_country_is_accepted_and_only_those():
    assert len(COUNTRY_CODES) == 249
    assert {"DE", "GB", "US", "JP", "AX", "SS", "XK"} & COUNTRY_CODES == {
        "DE", "GB", "US", "JP", "AX", "SS"
    }  # fmt: skip


def test_the_error_is_an_invalid_input_that_reaches_the_client_with_its_fields():
    with pytest.raises(AddressInvalid) as caught:
        validate_address(address(country="DE", postal_code="1"))
    error = caught.value

    response = problem_exception_handler(error, {})

    assert isinstance(error, InvalidInput)
    assert response is not None
    assert response.status_code == 400
    assert response.data["code"] == "invalid_address"
    assert response.data["errors"] == {
        "postal_code": "Not a valid postal code for DE (like 12345)."
    }


# Fuzzed input either validates to fields within their columns, or is refused by field.
@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            field: st.one_of(st.text(max_size=300), st.none(), st.integers())
            for field in ADDRESS_FIELDS
        },
    ),
    st.sampled_from(["DE", "US", "GB", "NL", "CA", "JP", "ZZ", "hk"]),
)
def test_fuzzed_addresses_never_escape_the_limits(data, country):
    data = {**BASE, "country": country, **data}
    try:
        result = validate_address(data)
    except AddressInvalid as exc:
        refused = exc.extra["errors"]
    else:
        refused = None
    if refused is not None:
        assert refused
        assert set(refused) <= set(ADDRESS_FIELDS)
        return
    for field, value in result.items():
        assert isinstance(value, str)
        assert len(value) <= MAX_LENGTHS[field]
        assert not any(ord(char) < 32 for char in value)
    assert result["country"] in COUNTRY_CODES


# --- The address book -------------------------------------------------------------------

BERLIN = address(country="DE", postal_code="10115")
LONDON = address(country="GB", postal_code="SW1A 1AA", city="London")
PARIS = address(country="FR", postal_code="75001", city="Paris")


def defaults_of(user: Any) -> tuple[list[int], list[int]]:
    rows = Address.objects.filter(user=user)
    return (
        list(rows.filter(is_default_shipping=True).values_list("pk", flat=True)),
        list(rows.filter(is_default_billing=True).values_list("pk", flat=True)),
    )


@pytest.mark.django_db
def test_save_address_stores_the_normalized_address():
    user = UserFactory()

    saved = services.save_address(user=user, data={**BERLIN, "country": "de", "city": " Berlin "})

    saved.refresh_from_db()
    assert (saved.user_id, saved.country, saved.city) == (user.pk, "DE", "Berlin")
    assert (saved.is_default_shipping, saved.is_default_billing) == (False, False)


@pytest.mark.django_db
def test_save_address_refuses_an_invalid_address_and_stores_nothing():
    user = UserFactory()

    with pytest.raises(AddressInvalid):
        services.save_address(user=user, data={**BERLIN, "postal_code": "1"})

    assert not Address.objects.exists()


@pytest.mark.django_db
def test_an_equal_address_is_not_stored_twice():
    user = UserFactory()
    first, created = services.store_address(user=user, data=BERLIN)

    again, created_again = services.store_address(
        user=user, data={**BERLIN, "city": "  Somewhere "}, default_billing=True
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Address.objects.filter(user=user).count() == 1
    assert defaults_of(user) == ([], [first.pk])


@pytest.mark.django_db
def test_a_new_default_takes_over_from_the_old_one():
    user = UserFactory()
    berlin = services.save_address(
        user=user, data=BERLIN, default_shipping=True, default_billing=True
    )

    london = services.save_address(user=user, data=LONDON, default_shipping=True)

    assert defaults_of(user) == ([london.pk], [berlin.pk])
    assert selectors.default_addresses(user=user) == (london, berlin)


@pytest.mark.django_db
def test_defaults_are_per_customer():
    user, other = UserFactory(), UserFactory()
    mine = services.save_address(user=user, data=BERLIN, default_shipping=True)

    theirs = services.save_address(user=other, data=BERLIN, default_shipping=True)

    assert defaults_of(user) == ([mine.pk], [])
    assert defaults_of(other) == ([theirs.pk], [])


@pytest.mark.django_db
@pytest.mark.parametrize("flag", ["is_default_shipping", "is_default_billing"])
def test_the_database_refuses_a_second_default(flag):
    user = UserFactory()
    Address.objects.create(user=user, **validate_address(BERLIN), **{flag: True})

    with pytest.raises(IntegrityError), transaction.atomic():
        Address.objects.create(user=user, **validate_address(LONDON), **{flag: True})

    assert Address.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_the_address_book_is_capped(settings):
    settings.ADDRESS_BOOK_MAX = 2
    user = UserFactory()
    services.save_address(user=user, data=BERLIN)
    services.save_address(user=user, data=LONDON)

    with pytest.raises(AddressBookFull) as caught:
        services.save_address(user=user, data=PARIS)

    assert caught.value.extra == {"limit": 2}
    assert Address.objects.filter(user=user).count() == 2
    # An address already in the book is still found when the book is full.
    assert services.store_address(user=user, data=LONDON)[1] is False


@pytest.mark.django_db
def test_update_address_replaces_the_fields_and_moves_defaults():
    user = UserFactory()
    berlin = services.save_address(user=user, data=BERLIN, default_shipping=True)
    london = services.save_address(user=user, data=LONDON)

    updated = services.update_address(
        user=user,
        address_id=london.pk,
        data={**LONDON, "postal_code": "ec1a1bb"},
        default_shipping=True,
        default_billing=True,
    )

    assert updated.postal_code == "EC1A 1BB"
    assert defaults_of(user) == ([london.pk], [london.pk])
    berlin.refresh_from_db()
    assert berlin.is_default_shipping is False

    services.update_address(user=user, address_id=london.pk, data=LONDON, default_billing=False)
    assert defaults_of(user) == ([london.pk], [])


@pytest.mark.django_db
def test_another_customers_address_cannot_be_updated_or_deleted():
    owner, stranger = UserFactory(), UserFactory()
    entry = services.save_address(user=owner, data=BERLIN)

    with pytest.raises(AddressNotFound):
        services.update_address(user=stranger, address_id=entry.pk, data=LONDON)
    with pytest.raises(AddressNotFound):
        services.delete_address(user=stranger, address_id=entry.pk)
    with pytest.raises(AddressNotFound):
        selectors.address_of(user=stranger, address_id=entry.pk)

    entry.refresh_from_db()
    assert entry.city == "Somewhere"


@pytest.mark.django_db
def test_delete_address_removes_it_once():
    user = UserFactory()
    entry = services.save_address(user=user, data=BERLIN)

    services.delete_address(user=user, address_id=entry.pk)

    assert not Address.objects.exists()
    with pytest.raises(AddressNotFound):
        services.delete_address(user=user, address_id=entry.pk)


# --- Races: real threads, each on its own connection -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_defaults_leave_exactly_one():
    user = UserFactory()
    entries = [
        services.save_address(user=user, data=address(country="DE", postal_code=f"1011{i}"))
        for i in range(4)
    ]

    results = run_at_once(
        4,
        lambda i: services.update_address(
            user=user,
            address_id=entries[i].pk,
            data=validate_address(address(country="DE", postal_code=f"1011{i}")),
            default_shipping=True,
        ),
    )

    assert not [r for r in results if isinstance(r, Exception)]
    shipping, _ = defaults_of(user)
    assert len(shipping) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_never_pass_the_cap(settings):
    settings.ADDRESS_BOOK_MAX = 3
    user = UserFactory()

    results = run_at_once(
        6,
        lambda i: services.save_address(
            user=user, data=address(country="DE", postal_code=f"2011{i}")
        ),
    )

    refused = [r for r in results if isinstance(r, AddressBookFull)]
    assert len(refused) == 3
    assert all(isinstance(r, Address | AddressBookFull) for r in results)
    assert Address.objects.filter(user=user).count() == 3
