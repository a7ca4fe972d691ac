"""The client address behind proxies: X-Forwarded-For is believed only as far as trusted."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from ecommerce.api.ratelimit import client_ip

CLIENT = "203.0.113.7"
PROXY = "10.0.0.2"


def ip_of(peer: str, forwarded_for: str | None = None) -> str:
    extra = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    return client_ip(RequestFactory().get("/api/products", REMOTE_ADDR=peer, **extra))


@pytest.fixture
def no_proxy(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = []
    settings.TRUSTED_PROXY_COUNT = 0


@pytest.fixture
def one_proxy(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = []
    settings.TRUSTED_PROXY_COUNT = 1


@pytest.fixture
def private_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = ["10.0.0.0/8", "fd00::/8"]
    settings.TRUSTED_PROXY_COUNT = 0


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize("forwarded_for", [None, "198.51.100.1", "1.1.1.1, 2.2.2.2"])
def test_without_trusted_proxies_the_header_is_ignored(forwarded_for: str | None) -> None:
    assert ip_of(CLIENT, forwarded_for) == CLIENT


@pytest.mark.usefixtures("one_proxy")
@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        (CLIENT, CLIENT),
        (f"198.51.100.1, {CLIENT}", CLIENT),  # the client wrote the first entry itself
        (f"1.1.1.1, 2.2.2.2,{CLIENT}", CLIENT),
        (f"{CLIENT}:51234", CLIENT),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:203.0.113.7", CLIENT),
    ],
)
def test_behind_one_proxy_the_last_entry_is_the_client(forwarded_for: str, expected: str) -> None:
    assert ip_of(PROXY, forwarded_for) == expected


@pytest.mark.usefixtures("one_proxy")
@pytest.mark.parametrize("forwarded_for", [None, "", " , ", "not-an-address"])
def test_behind_one_proxy_a_missing_or_malformed_entry_means_the_peer(
    forwarded_for: str | None,
) -> None:
    assert ip_of(PROXY, forwarded_for) == PROXY


def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client(settings: Any) -> None:
    settings.TRUSTED_PROXY_CIDRS = []
    settings.TRUSTED_PROXY_COUNT = 2

    assert ip_of(PROXY, f"6.6.6.6, {CLIENT}, 10.9.9.9") == CLIENT
    # One entry only: the request skipped the outer proxy, so nothing in it is vouched for.
    assert ip_of(PROXY, "6.6.6.6") == PROXY


@pytest.mark.usefixtures("private_proxies")
@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        (PROXY, CLIENT, CLIENT),
        (PROXY, f"6.6.6.6, {CLIENT}, 10.1.1.1, 10.2.2.2", CLIENT),
        ("fd00::5", f"6.6.6.6, {CLIENT}", CLIENT),
        # A peer outside the trusted networks is the client, whatever it claims.
        ("198.51.100.9", "6.6.6.6", "198.51.100.9"),
        # Only trusted hops: the request came from inside; the farthest hop is its origin.
        (PROXY, "10.7.7.7, 10.1.1.1", "10.7.7.7"),
        (PROXY, None, PROXY),
        # A malformed entry cannot come from a trusted proxy: stop at the last trusted hop.
        (PROXY, f"{CLIENT}, junk, 10.1.1.1", "10.1.1.1"),
    ],
)
def test_with_trusted_networks_the_first_untrusted_hop_from_the_right_is_the_client(
    peer: str, forwarded_for: str | None, expected: str
) -> None:
    assert ip_of(peer, forwarded_for) == expected


def test_an_empty_peer_address_is_kept_empty(no_proxy: None) -> None:
    assert ip_of("", "198.51.100.1") == ""
