"""The egress address policy: which addresses are refused and why, what the operator's allow-list lets through
(never a metadata address by accident), and that a connection goes only to the vetted address, resolved once.

No test here sends a packet beyond 127.0.0.1: refused destinations are refused before any socket connects, and
the public-address cases run with `connect` replaced by a recorder that refuses every connection itself."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import pytest

from openims.federation import oidc_fingerprint as of
from openims.net import egress
from tests.federation_support import recording_listener


@pytest.mark.parametrize(
    "address, why",
    [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared"),
        ("100.127.255.255", "shared"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.0.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("192.88.99.1", "reserved"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("febf:ffff::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456:789a::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fec0::1", "reserved"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("100::1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("64:ff9b:1::1", "reserved"),
        ("::7f00:1", "reserved"),  # the deprecated IPv4-compatible form
        ("::ffff:0:7f00:1", "reserved"),  # IPv4-translated (SIIT)
        ("4000::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback (IPv4-mapped)"),
        ("::ffff:10.0.0.1", "private (IPv4-mapped)"),
        ("::ffff:169.254.169.254", "cloud metadata (IPv4-mapped)"),
        ("::ffff:100.64.0.1", "shared (IPv4-mapped)"),
        ("64:ff9b::7f00:1", "loopback (NAT64)"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata (NAT64)"),
        ("64:ff9b::c0a8:101", "private (NAT64)"),
        ("2002:7f00:1::1", "loopback (6to4)"),
        ("2002:a9fe:a9fe::1", "cloud metadata (6to4)"),
        ("2002:a00:1::1", "private (6to4)"),
    ],
)
def test_special_addresses_are_refused_with_their_reason(address: str, why: str) -> None:
    parsed = egress.parse(address)
    assert egress.classify(parsed) == why
    assert egress.Policy().refusal(parsed) == why


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "11.0.0.1",
        "100.63.255.255",  # just below 100.64.0.0/10
        "100.128.0.0",  # just above it
        "172.15.255.255",
        "172.32.0.0",
        "169.253.255.255",
        "192.167.255.255",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # a DNS64 answer for 8.8.8.8 on an IPv6-only network
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert egress.classify(egress.parse(address)) is None
    assert egress.Policy().refusal(egress.parse(address)) is None


def refused(policy: egress.Policy, address: str) -> bool:
    return policy.refusal(ipaddress.ip_address(address)) is not None


def test_the_allow_list_opens_exactly_the_networks_it_names() -> None:
    loopback = egress.Policy(["127.0.0.1"])
    assert not refused(loopback, "127.0.0.1")
    assert not refused(loopback, "::ffff:127.0.0.1")  # the same address, spelt in IPv6
    assert refused(loopback, "127.0.0.2")
    assert refused(loopback, "::1")
    assert refused(loopback, "64:ff9b::7f00:1")  # a NAT64 gateway, not this host
    assert refused(loopback, "10.0.0.1")

    lan = egress.Policy(["10.0.0.0/8", "fd12::/16"])
    assert not refused(lan, "10.20.30.40") and not refused(lan, "fd12:1::1")
    assert refused(lan, "192.168.0.1") and refused(lan, "fd13::1")
    # A host address with the prefix length of its network, as OPENIMS_EGRESS_ALLOW accepts it.
    assert not refused(egress.Policy(["192.168.7.9/24"]), "192.168.7.200")


def test_a_metadata_address_needs_to_be_allowed_on_its_own() -> None:
    wide = egress.Policy(["100.64.0.0/10", "169.254.0.0/16", "fd00::/8", "0.0.0.0/0", "::/0"])
    assert not refused(wide, "100.64.0.1") and not refused(wide, "169.254.1.1") and not refused(wide, "fd00::1")
    for metadata in ("100.100.100.200", "169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert refused(wide, metadata), metadata
    assert not refused(egress.Policy(["100.100.100.200"]), "100.100.100.200")
    assert not refused(egress.Policy(["169.254.169.254/32"]), "::ffff:169.254.169.254")
    assert not refused(egress.Policy(["fd00:ec2::254/128"]), "fd00:ec2::254")


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket tries to connect to; each attempt is refused here, so no packet leaves."""
    attempts: list[Any] = []

    def record(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", record)
    return attempts


def soon() -> float:
    return time.monotonic() + 5


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "127.0.0.1",
        "localhost",
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f.0.0.1",
        "017700000001",  # octal
        "127.1",
        "::1",
        "::ffff:127.0.0.1",
        "fd00:ec2::254",
    ],
)
def test_refused_destinations_are_never_connected_to(host: str, connects: list[Any]) -> None:
    with pytest.raises(egress.EgressError) as info:
        egress.connect(host, 443, egress.Policy(), soon())
    assert "address" in info.value.why and "OPENIMS_EGRESS_ALLOW" in info.value.why
    assert connects == []


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve names from `answers` (and count the questions) instead of asking the system."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_a_name_with_one_refused_address_is_refused_whole(monkeypatch: pytest.MonkeyPatch, connects: list[Any]) -> None:
    fake_dns(monkeypatch, {"rebind.example": ["8.8.8.8", "10.0.0.1"], "mixed.example": ["2606:4700::1", "::1"]})
    for host in ("rebind.example", "mixed.example"):
        with pytest.raises(egress.EgressError, match="loopback|private"):
            egress.connect(host, 443, egress.Policy(), soon())
    assert connects == []


def test_the_vetted_address_is_connected_to_without_resolving_again(
    monkeypatch: pytest.MonkeyPatch, connects: list[Any]
) -> None:
    asked = fake_dns(monkeypatch, {"issuer.example": ["8.8.8.8", "2606:4700::1111"]})
    with pytest.raises(egress.EgressError, match="cannot connect to issuer.example:443"):
        egress.connect("issuer.example", 443, egress.Policy(), soon())
    # Each vetted address was tried as the numeric socket address it resolved to, and the name asked once.
    assert connects == [("8.8.8.8", 443), ("2606:4700::1111", 443, 0, 0)]
    assert asked == ["issuer.example"]


def test_a_name_that_does_not_resolve_fails_like_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(egress.EgressError, match="does not resolve"):
        egress.resolve("nowhere.example", 443, egress.Policy(), soon())


def wait_for(accepted: list[Any], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(accepted) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_an_allowed_loopback_address_is_connected_to() -> None:
    with recording_listener() as (port, accepted):
        with pytest.raises(egress.EgressError):
            egress.connect("127.0.0.1", port, egress.Policy(), soon())
        egress.connect("127.0.0.1", port, egress.Policy(["127.0.0.1"]), soon()).close()
        wait_for(accepted, 1)
    assert len(accepted) == 1 and accepted[0][0] == "127.0.0.1"


def test_every_failed_fetch_lasts_the_whole_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused address, which fails at once, is held until the deadline, as a filtered port would be."""
    waits: list[float] = []
    monkeypatch.setattr(egress, "_sleep", waits.append)
    with pytest.raises(of.FetchError, match="loopback"):
        of.fingerprint("127.0.0.1", 443, timeout=30)
    assert len(waits) == 1 and 29 < waits[0] <= 30
    with pytest.raises(of.FetchError, match="private"):
        of.fingerprint("10.0.0.1", 443, timeout=30, policy=egress.Policy(["127.0.0.1"]))
    assert len(waits) == 2 and 29 < waits[1] <= 30
