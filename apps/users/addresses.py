"""Postal addresses: the fields, their limits, and the per-country rules that make one valid.

`validate_address` is the one gate every stored address passes (the address book, a
cart's shipping and billing address, an order's copy): it normalizes what a person
types (spaces, letter case, the canonical spacing of a postal code) so equal addresses
compare equal, and refuses what a carrier could not deliver to. Every field has a length
limit no longer than its column, so no input reaches the database as a length error.

The rules are a deliberately small table, not a full address-format database: required
fields everywhere, the region (state, province, prefecture) where the post needs it, and
a postal-code format for the countries we ship to most. Elsewhere any postal code of
letters, digits, spaces and hyphens is taken.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecommerce.errors import Conflict, InvalidInput, NotFound

ADDRESS_FIELDS: tuple[str, ...] = (
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
)

# Characters, after normalization; the model's columns use the same numbers.
MAX_LENGTHS: dict[str, int] = {
    "first_name": 100,
    "last_name": 100,
    "company": 100,
    "street_address_1": 200,
    "street_address_2": 200,
    "city": 100,
    "postal_code": 20,
    "country": 2,
    "country_area": 100,
    "phone": 32,
}

# Needed in every country.
REQUIRED_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "street_address_1",
    "city",
    "country",
)

# ISO 3166-1 alpha-2, the officially assigned codes.
_ISO_3166_ALPHA_2 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES: frozenset[str] = frozenset(_ISO_3166_ALPHA_2.split())

# Countries whose post needs the region: the field is required there.
AREA_REQUIRED: frozenset[str] = frozenset({"US", "CA", "AU", "BR", "MX", "JP", "CN", "IN"})

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "UM": "U.S. Minor Outlying Islands",
    "AA": "Armed Forces Americas", "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
}  # fmt: skip
CA_PROVINCES: dict[str, str] = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip
# Where the region is one of a closed list, stored as its postal abbreviation.
AREA_CODES: dict[str, dict[str, str]] = {"US": US_STATES, "CA": CA_PROVINCES}

# Unicode bidirectional overrides and isolates: invisible, and they reorder what a label
# printer or an admin screen shows (a classic way to disguise text).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Anything longer is refused before normalization does any work on it.
_RAW_LIMIT_FACTOR = 4
_PHONE = re.compile(r"\+?[0-9 ()./-]+", re.ASCII)
_PHONE_DIGITS = (5, 20)
_GENERIC_POSTAL = re.compile(r"[A-Z0-9][A-Z0-9 -]*", re.ASCII)


@dataclass(frozen=True)
class PostalFormat:
    """A country's postal code: the accepted pattern (on the code with its spaces and
    hyphens removed) and how to write it canonically."""

    pattern: re.Pattern[str]
    example: str
    canonical: Callable[[re.Match[str]], str]
    required: bool = True


def _fmt(
    pattern: str, example: str, template: str = r"\g<0>", required: bool = True
) -> PostalFormat:
    compiled = re.compile(pattern, re.ASCII)
    return PostalFormat(compiled, example, lambda match: match.expand(template), required)


_CA_FIRST = "ABCEGHJKLMNPRSTVXY"
_CA_OTHER = "ABCEGHJKLMNPRSTVWXYZ"
POSTAL_FORMATS: dict[str, PostalFormat] = {
    "CA": _fmt(rf"([{_CA_FIRST}]\d[{_CA_OTHER}])(\d[{_CA_OTHER}]\d)", "A1A 1A1", r"\1 \2"),
    "GB": _fmt(r"(GIR|[A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})", "SW1A 1AA", r"\1 \2"),
    "JP": _fmt(r"(\d{3})(\d{4})", "123-4567", r"\1-\2"),
    "NL": _fmt(r"([1-9]\d{3})([A-Z]{2})", "1234 AB", r"\1 \2"),
    "PL": _fmt(r"(\d{2})(\d{3})", "00-000", r"\1-\2"),
    "DE": _fmt(r"\d{5}", "12345"),
    "FR": _fmt(r"\d{5}", "12345"),
    "ES": _fmt(r"(0[1-9]|[1-4]\d|5[0-2])\d{3}", "28013"),
    "IT": _fmt(r"\d{5}", "12345"),
    "AT": _fmt(r"[1-9]\d{3}", "1010"),
    "CH": _fmt(r"[1-9]\d{3}", "8001"),
    "BE": _fmt(r"[1-9]\d{3}", "1000"),
    "DK": _fmt(r"\d{4}", "2100"),
    "LI": _fmt(r"94[89]\d", "9490"),
    "LU": _fmt(r"(?:L)?(\d{4})", "1234", r"\1"),
    "SE": _fmt(r"([1-9]\d{2})(\d{2})", "123 45", r"\1 \2"),
    "NO": _fmt(r"\d{4}", "0150"),
    "FI": _fmt(r"\d{5}", "00100"),
    "IS": _fmt(r"\d{3}", "101"),
    "PT": _fmt(r"(\d{4})(\d{3})", "1000-001", r"\1-\2"),
    "IE": _fmt(r"([AC-FHKNPRTV-Y]\d{2}|D6W)([0-9AC-FHKNPRTV-Y]{4})", "D02 X285", r"\1 \2", False),
    "CZ": _fmt(r"([1-7]\d{2})(\d{2})", "110 00", r"\1 \2"),
    "SK": _fmt(r"([089]\d{2})(\d{2})", "811 01", r"\1 \2"),
    "GR": _fmt(r"(\d{3})(\d{2})", "104 31", r"\1 \2"),
    "HU": _fmt(r"[1-9]\d{3}", "1051"),
    "SI": _fmt(r"(?:SI)?([1-9]\d{3})", "1000", r"\1"),
    "HR": _fmt(r"(?:HR)?([1-5]\d{4})", "10000", r"\1"),
    "RO": _fmt(r"\d{6}", "010011"),
    "BG": _fmt(r"[1-9]\d{3}", "1000"),
    "EE": _fmt(r"\d{5}", "10111"),
    "LV": _fmt(r"(?:LV)?(\d{4})", "LV-1010", r"LV-\1"),
    "LT": _fmt(r"(?:LT)?(\d{5})", "LT-01100", r"LT-\1"),
    "AU": _fmt(r"\d{4}", "2000"),
    "NZ": _fmt(r"\d{4}", "6011"),
    "BR": _fmt(r"(\d{5})(\d{3})", "01310-100", r"\1-\2"),
    "MX": _fmt(r"\d{5}", "06600"),
    "IN": _fmt(r"[1-9]\d{5}", "110001"),
    "CN": _fmt(r"\d{6}", "100000"),
    "KR": _fmt(r"\d{5}", "03187"),
    "SG": _fmt(r"\d{6}", "018956"),
    "TR": _fmt(r"\d{5}", "34000"),
    "IL": _fmt(r"\d{7}", "6100000"),
    "ZA": _fmt(r"\d{4}", "8001"),
}


# ZIP or ZIP+4: the extension is optional, so no single template writes both.
POSTAL_FORMATS["US"] = PostalFormat(
    re.compile(r"(\d{5})(\d{4})?", re.ASCII),
    "12345 or 12345-6789",
    lambda match: f"{match[1]}-{match[2]}" if match[2] else match[1],
)


class AddressInvalid(InvalidInput):
    """An address a carrier could not deliver to: `errors` names each field and why."""

    code = "invalid_address"
    title = "Invalid address"

    def __init__(
        self, *, errors: Mapping[str, str], codes: Mapping[str, str] | None = None
    ) -> None:
        fields = ", ".join(errors)
        super().__init__(f"The address is not valid: {fields}.", errors=dict(errors))
        # Per field, a stable reason ("required", "invalid_postal_code", ...).
        self.codes: dict[str, str] = dict(codes or {})


class AddressNotFound(NotFound):
    code = "address_not_found"
    title = "Address not found"

    def __init__(self, *, address_id: int) -> None:
        super().__init__(f"No address {address_id} in your address book.")


class AddressBookFull(Conflict):
    """The address book holds as many addresses as it may; delete one first."""

    code = "address_book_full"
    title = "Address book full"

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"An address book holds at most {limit} addresses.", limit=limit)


class _Errors:
    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.codes: dict[str, str] = {}

    def add(self, field: str, code: str, message: str) -> None:
        self.messages.setdefault(field, message)
        self.codes.setdefault(field, code)


def _has_control(value: str) -> bool:
    return any(
        unicodedata.category(char) in ("Cc", "Cs", "Co") or char in _BIDI_CONTROLS for char in value
    )


def _clean_text(field: str, value: Any, errors: _Errors) -> str:
    """One field as text: NFC, trimmed, inner runs of spaces collapsed; "" when refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(field, "not_text", "Not a valid string.")
        return ""
    limit = MAX_LENGTHS[field]
    if len(value) > limit * _RAW_LIMIT_FACTOR:
        errors.add(field, "max_length", f"Ensure this field has no more than {limit} characters.")
        return ""
    # Newlines and tabs included: an address line is one line.
    if _has_control(value):
        errors.add(field, "control_characters", "Control characters are not allowed.")
        return ""
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if len(text) > limit:
        errors.add(field, "max_length", f"Ensure this field has no more than {limit} characters.")
        return ""
    return text


def normalize_postal_code(country: str, postal_code: str) -> str | None:
    """The canonical spelling of `postal_code` in `country`; None when it is not one.

    Letter case, spaces and hyphens as typed do not matter: "sw1a1aa" is "SW1A 1AA".
    """
    code = postal_code.upper()
    rule = POSTAL_FORMATS.get(country)
    if rule is None:
        return code if _GENERIC_POSTAL.fullmatch(code) else None
    match = rule.pattern.fullmatch(re.sub(r"[\s-]", "", code))
    return rule.canonical(match) if match else None


def _area(country: str, area: str, errors: _Errors) -> str:
    names = AREA_CODES.get(country)
    if names is None or not area:
        return area
    code = area.upper().replace(".", "")
    if code in names:
        return code
    by_name = {name.casefold(): key for key, name in names.items()}
    found = by_name.get(area.casefold())
    if found is None:
        label = "state" if country == "US" else "province"
        errors.add("country_area", "invalid_country_area", f"Not a {label} of {country}.")
        return area
    return found


def address_data(source: Any) -> dict[str, str]:
    """The ADDRESS_FIELDS of a mapping or an object (an Address row), "" where unset."""
    if isinstance(source, Mapping):
        return {field: source.get(field) or "" for field in ADDRESS_FIELDS}
    return {field: getattr(source, field, "") or "" for field in ADDRESS_FIELDS}


def validate_address(data: Mapping[str, Any]) -> dict[str, str]:
    """The address in `data`, normalized, with every field of ADDRESS_FIELDS ("" if unset).

    Keys outside ADDRESS_FIELDS are ignored; None is an empty field. Idempotent: a
    normalized address validates to itself.
    Raises AddressInvalid naming every refused field.
    """
    errors = _Errors()
    address = {field: _clean_text(field, data.get(field), errors) for field in ADDRESS_FIELDS}

    country = address["country"].upper()
    address["country"] = country
    if country and country not in COUNTRY_CODES and "country" not in errors.messages:
        errors.add("country", "invalid_country", "Not an ISO 3166-1 alpha-2 country code.")
        country = ""

    required = list(REQUIRED_FIELDS)
    rule = POSTAL_FORMATS.get(country)
    if rule is not None and rule.required:
        required.append("postal_code")
    if country in AREA_REQUIRED:
        required.append("country_area")
    for field in required:
        if not address[field]:
            errors.add(field, "required", "This field is required.")

    if address["postal_code"] and country:
        canonical = normalize_postal_code(country, address["postal_code"])
        if canonical is None:
            expected = f" (like {rule.example})" if rule else ""
            errors.add(
                "postal_code",
                "invalid_postal_code",
                f"Not a valid postal code for {country}{expected}.",
            )
        else:
            address["postal_code"] = canonical
    else:
        address["postal_code"] = address["postal_code"].upper()

    address["country_area"] = _area(country, address["country_area"], errors)

    phone = address["phone"]
    if phone:
        digits = sum(char.isdigit() for char in phone)
        low, high = _PHONE_DIGITS
        if not _PHONE.fullmatch(phone) or not low <= digits <= high:
            errors.add("phone", "invalid_phone", "Not a valid phone number.")

    if errors.messages:
        ordered = {
            field: errors.messages[field] for field in ADDRESS_FIELDS if field in errors.messages
        }
        raise AddressInvalid(errors=ordered, codes=errors.codes)
    return address
