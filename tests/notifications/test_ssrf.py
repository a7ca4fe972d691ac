"""The SSRF guard: only public addresses unless allow-listed, one DNS lookup, pinned connects."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from apps.notifications.models import Notification, NotificationStatus
from apps.notifications.services import send_webhook_ping
from ecommerce.ssrf import UnsafeDestination, is_public_address, resolve_destination
from tests.notifications.conftest import make_endpoint
from tests.notifications.receivers import webhook_receiver

REFUSED_URLS = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[ff02::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "http://localhost/hook",  # a name resolving to loopback
    "http://LOCALHOST./hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_non_public_destinations_are_refused_without_the_allow_list(url):
    with pytest.raises(UnsafeDestination, match="non-public address"):
        resolve_destination(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:25/", "http:///nohost"],
)
def test_only_http_and_https_urls_with_a_host_are_accepted(url):
    with pytest.raises(UnsafeDestination):
        resolve_destination(url)


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://93.184.215.14/hook", ("93.184.215.14",)),
        ("http://[2606:4700:4700::1111]:8443/hook", ("2606:4700:4700::1111",)),
        ("http://[::ffff:8.8.8.8]/hook", ("::ffff:808:808",)),
    ],
)
def test_public_addresses_pass(url, addresses):
    assert resolve_destination(url).addresses == addresses


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.1"]),
        ("http://localhost:9000/hook", ["localhost"]),
        ("http://localhost:9000/hook", ["127.0.0.0/8"]),
        ("http://10.0.0.1/hook", ["10.0.0.0/8"]),
        ("http://[::1]/hook", ["::1"]),
        ("http://[::1]/hook", ["[::1]"]),
        ("http://169.254.169.254/x", ["169.254.169.254"]),
    ],
)
def test_the_allow_list_names_hosts_or_networks(url, allowed):
    destination = resolve_destination(url, allowed=allowed)
    assert destination.addresses


def test_a_broad_allowed_range_never_opens_the_metadata_address():
    with pytest.raises(UnsafeDestination):
        resolve_destination("http://169.254.169.254/x", allowed=["169.254.0.0/16"])
    assert resolve_destination("http://169.254.1.1/x", allowed=["169.254.0.0/16"]).addresses


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    answers = [("93.184.215.14", 80), ("10.1.2.3", 80)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in answers],
    )

    with pytest.raises(UnsafeDestination, match=r"10\.1\.2\.3"):
        resolve_destination("http://mixed.example/hook")


def test_public_means_globally_routable_unicast_only():
    import ipaddress

    assert is_public_address(ipaddress.ip_address("8.8.8.8"))
    assert not is_public_address(ipaddress.ip_address("198.18.0.1"))  # benchmarking
    assert not is_public_address(ipaddress.ip_address("192.0.2.1"))  # documentation
    assert not is_public_address(ipaddress.ip_address("2001:db8::1"))  # documentation


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_delivery_to_a_now_private_address_is_refused_and_never_connects(
    customer, django_capture_on_commit_callbacks, host
):
    with webhook_receiver() as receiver:
        # Registered while allowed (or before its DNS changed): delivery checks again.
        endpoint = make_endpoint(customer, receiver.url(host=host))
        with django_capture_on_commit_callbacks(execute=True):
            notification = send_webhook_ping(owner=customer, endpoint_id=endpoint.pk)

    notification.refresh_from_db()
    assert receiver.requests == []
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 1)
    assert "non-public address" in notification.last_error


@pytest.mark.django_db
def test_the_request_goes_to_the_checked_address_with_the_urls_host_name(
    customer, django_capture_on_commit_callbacks, monkeypatch, settings
):
    """No second lookup: the name resolves once, and the connection uses that address."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1/32"]
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        if host == "hooks.example":  # nothing else knows this name
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    with webhook_receiver() as receiver:
        endpoint = make_endpoint(customer, f"http://hooks.example:{receiver.port}/hook")
        with django_capture_on_commit_callbacks(execute=True):
            send_webhook_ping(owner=customer, endpoint_id=endpoint.pk)

    # The connect itself "resolves" only the address literal it was given.
    assert sorted(lookups) == ["127.0.0.1", "hooks.example"]
    assert len(receiver.requests) == 1
    assert receiver.requests[0].headers["host"] == f"hooks.example:{receiver.port}"
    assert Notification.objects.get(endpoint=endpoint).status == NotificationStatus.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://[::1]/",
    ],
)
def test_the_api_refuses_to_register_a_private_url(customer, client_for, url):
    response = client_for(customer).post("/api/webhooks", {"url": url})

    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_refused"
    assert not customer.webhook_endpoints.exists()
