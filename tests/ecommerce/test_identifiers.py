"""The one parser of ids and integers: ASCII digits only, in the column's range."""

from __future__ import annotations

import uuid

import pytest

from ecommerce.api import identifiers
from ecommerce.api.identifiers import InvalidNumber, parse_id, parse_int, parse_uuid


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("+7", 7), ("-3", -3), (42, 42), (2.0, 2), (str(2**63 - 1), 2**63 - 1)],
)
def test_ascii_digits_and_json_integers_are_read(value: object, expected: int) -> None:
    assert parse_int(value) == expected


@pytest.mark.parametrize(
    "value",
    ["²", "١٢", "1_000", " 1", "1 ", "1.0", "1e3", "", "0x10", True, None, 1.5, [1], str(2**63)],
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(InvalidNumber):
        parse_int(value)


@pytest.mark.parametrize("value", [0, -1, 2**63, "0", "9" * 20])
def test_an_id_is_between_one_and_the_bigint_maximum(value: object) -> None:
    assert identifiers.is_id(value) is False
    with pytest.raises(InvalidNumber):
        parse_id(value)


def test_uuids_are_read_only_as_32_hex_digits() -> None:
    canonical = "7d4c1e9a-6b3d-4f2e-9c8b-0a1b2c3d4e5f"
    assert parse_uuid(canonical) == uuid.UUID(canonical)
    assert parse_uuid(canonical.replace("-", "").upper()) == uuid.UUID(canonical)
    for malformed in (f"{{{canonical}}}", f"urn:uuid:{canonical}", canonical[:-1], "z" * 32):
        with pytest.raises(ValueError, match="A UUID is required"):
            parse_uuid(malformed)
