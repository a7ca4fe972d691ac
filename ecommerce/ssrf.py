"""A guard for requests to URLs that users give us: resolve once, allow only public addresses.

    destination = resolve_destination(url, allowed=settings.WEBHOOK_ALLOWED_HOSTS)
    # connect to one of destination.addresses; send Host (and TLS SNI) = destination.host

Only http and https are accepted. The host name is resolved here, and EVERY address it
resolves to must be public: a name with one public and one private address is refused,
since the resolver may hand out either. Refused: loopback, private (RFC 1918, IPv6 ULA),
link-local (so the 169.254.169.254 metadata service), shared (100.64.0.0/10), multicast,
reserved, unspecified and documentation ranges, and IPv6 forms that embed such an IPv4
address (IPv4-mapped, 6to4, NAT64). The caller then connects to the returned addresses and
never resolves the name again, so a DNS answer that changes between check and use (DNS
rebinding) cannot reroute the request.

The allow-list (host names or CIDRs) lets tests and private deployments reach named
destinations: a listed host name allows whatever it resolves to; a listed network allows
its addresses. Cloud metadata addresses are refused unless listed exactly (a /32 or /128),
so allowing a broad private range never opens them by accident.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ecommerce.errors import InvalidInput, Unavailable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = {"http": 80, "https": 443}
# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS over IPv6, Alibaba Cloud).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
# RFC 6052 well-known NAT64 prefix: the last 32 bits are an IPv4 address.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class UnsafeDestination(InvalidInput):
    """The URL is not http(s), or its host is (or resolves to) a non-public address."""

    code = "unsafe_destination"
    title = "Destination not allowed"

    def __init__(self, detail: str, *, url: str) -> None:
        super().__init__(detail, url=url)


class UnresolvableHost(Unavailable):
    """The host name did not resolve (perhaps only for now: DNS fails transiently too)."""

    code = "unresolvable_host"
    title = "Host name does not resolve"

    def __init__(self, *, host: str, reason: str) -> None:
        self.host = host
        super().__init__(f"The host {host!r} does not resolve ({reason}).", host=host)


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    def allows_host(self, host: str) -> bool:
        return host in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        if address in METADATA_ADDRESSES:
            return any(
                network.prefixlen == network.max_prefixlen and address in network
                for network in self.networks
            )
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Destination:
    """A checked URL: connect to `addresses` (in order), name `host` in Host and SNI."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """Split allow-list entries into host names and networks (a bare IP is a /32 or /128).

    Raises ValueError on an empty entry.
    """
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            raise ValueError("An allow-list entry is empty.")
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return AllowList(hosts=frozenset(hosts), networks=tuple(networks))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (and IPv6 embedding only such)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
        if address.ipv4_mapped is not None:
            return True  # decided by the IPv4 address alone
        if address.is_site_local:
            return False
    return not (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in METADATA_ADDRESSES
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(host=host, reason=str(exc)) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the address decides alone.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(host=host, reason="no address")
    return addresses


def resolve_destination(url: str, *, allowed: Iterable[str] = ()) -> Destination:
    """Check `url` and resolve its host once; the caller must connect to the result only.

    Raises UnsafeDestination (a scheme other than http(s), no host, a non-public address
    not in `allowed`) and UnresolvableHost (DNS gave no answer).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"Not a valid URL: {exc}.", url=url) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeDestination("Only http and https URLs are allowed.", url=url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeDestination("The URL has no host.", url=url)
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise UnsafeDestination("The host name is not valid.", url=url) from None
    port = port or SCHEMES[scheme]
    allow_list = parse_allow_list(allowed)
    addresses = _resolve(host, port)
    if not allow_list.allows_host(host):
        refused = [
            address
            for address in addresses
            if not is_public_address(address) and not allow_list.allows_address(address)
        ]
        if refused:
            shown = ", ".join(str(address) for address in refused)
            raise UnsafeDestination(
                f"The host {host} resolves to a non-public address ({shown}).", url=url
            )
    return Destination(
        scheme=scheme, host=host, port=port, addresses=tuple(str(a) for a in addresses)
    )


__all__ = [
    "Destination",
    "UnresolvableHost",
    "UnsafeDestination",
    "is_public_address",
    "parse_allow_list",
    "resolve_destination",
]
