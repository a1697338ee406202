"""Outbound connections the server makes on a caller's behalf, held to one address policy, so that an API call
cannot make the server probe its own host, its private networks or the cloud's metadata service.

A destination is resolved once and every address it resolves to is vetted; the connection then goes to a
vetted numeric socket address and is never resolved again, so a name cannot pass the check with one address
and be connected to another (DNS rebinding). A name with any refused address is refused as a whole.

Refused by default: loopback, private (RFC 1918, RFC 4193 unique local), link-local, unspecified, multicast,
reserved, shared (100.64.0.0/10), benchmarking and documentation ranges, IPv6 outside global unicast
(2000::/3), the IPv4-mapped, NAT64 and 6to4 forms of refused IPv4 addresses, and the cloud metadata addresses.
The operator may allow networks anyway (`OPENIMS_EGRESS_ALLOW`, Settings.egress_allowed_networks); a cloud
metadata address is allowed only when listed on its own (a /32 or /128), never because a wider allowed
network happens to hold it (100.64.0.0/10 holds Alibaba Cloud's 100.100.100.200).

A fetch must not tell its caller why it failed: a refused address, a name that does not resolve, a closed
port, a filtered one and a host that does not speak the protocol all look alike to the caller, and `pad`
makes them take equally long (the whole time budget). The reason goes to the server log, for the operator.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata and host services of the clouds, reachable from a VM without credentials.
METADATA: frozenset[Address] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, Google Cloud, Oracle Cloud, OpenStack, DigitalOcean and more
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity credentials
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (older instances)
        "168.63.129.16",  # Azure WireServer: a public-looking address only reachable from inside Azure
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
    )
)


def _ranges(*pairs: tuple[str, str]) -> tuple[tuple[str, Network], ...]:
    return tuple((name, ipaddress.ip_network(cidr)) for name, cidr in pairs)


# The IANA special-purpose registries' entries that are not globally reachable, plus multicast.
_IPV4 = _ranges(
    ("unspecified", "0.0.0.0/8"),
    ("private", "10.0.0.0/8"),
    ("shared", "100.64.0.0/10"),
    ("loopback", "127.0.0.0/8"),
    ("link-local", "169.254.0.0/16"),
    ("private", "172.16.0.0/12"),
    ("reserved", "192.0.0.0/24"),
    ("documentation", "192.0.2.0/24"),
    ("reserved", "192.88.99.0/24"),  # the deprecated 6to4 relay anycast
    ("private", "192.168.0.0/16"),
    ("benchmarking", "198.18.0.0/15"),
    ("documentation", "198.51.100.0/24"),
    ("documentation", "203.0.113.0/24"),
    ("multicast", "224.0.0.0/4"),
    ("reserved", "240.0.0.0/4"),  # with the limited broadcast 255.255.255.255
)
_IPV6 = _ranges(
    ("unspecified", "::/128"),
    ("loopback", "::1/128"),
    ("reserved", "64:ff9b:1::/48"),  # local-use NAT64: where the IPv4 address sits depends on the site
    ("reserved", "100::/64"),  # discard-only
    ("reserved", "2001::/23"),  # IETF protocol assignments, Teredo among them
    ("documentation", "2001:db8::/32"),
    ("documentation", "3fff::/20"),
    ("private", "fc00::/7"),  # unique local (RFC 4193)
    ("link-local", "fe80::/10"),
    ("reserved", "fec0::/10"),  # the deprecated site-local
    ("multicast", "ff00::/8"),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse(text: str) -> Address:
    """An IP address from its standard text, without an IPv6 zone (`fe80::1%eth0`): zones do not change
    which range an address is in, and a zoned address would not compare equal to the same one unzoned."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def parse_or_none(text: str) -> Address | None:
    """The address `text` spells in standard form, or None for a host name (or an unusual spelling)."""
    try:
        return parse(text)
    except ValueError:
        return None


def hostport(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def embedded_ipv4(address: Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, with the form's name: IPv4-mapped, NAT64 or 6to4."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


def classify(address: Address) -> str | None:
    """Why `address` is not a public destination (`loopback`, `cloud metadata`, `private (IPv4-mapped)`...),
    or None when it is a global unicast address."""
    if address in METADATA:
        return "cloud metadata"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        why = classify(inner)
        return f"{why} ({form})" if why else None
    for name, network in _IPV6 if address.version == 6 else _IPV4:
        if address in network:
            return name
    if address.version == 6 and address not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return None


class Policy:
    """Which addresses a fetch may connect to: public ones, and those in the operator's allowed networks."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in allowed)

    def refusal(self, address: Address) -> str | None:
        """Why the policy refuses `address`, or None when a fetch may connect to it."""
        why = classify(address)
        if why is None:
            return None
        # The IPv4-mapped form is the IPv4 address itself (the kernel sends IPv4): allowing one allows both.
        embedded = embedded_ipv4(address)
        same = [address] + ([embedded[1]] if embedded and embedded[0] == "IPv4-mapped" else [])
        metadata = why.startswith("cloud metadata")
        for network in self.allowed:
            if metadata and network.num_addresses != 1:
                continue
            if any(a in network for a in same):
                return None
        return why


class EgressError(Exception):
    """The destination could not be used. `why` is for the operator's log only: shown to a caller it would
    tell a refused address from a closed port, or a closed port from a filtered one."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Destination:
    """One vetted address of a host, ready to connect to without resolving anything again."""

    family: socket.AddressFamily
    sockaddr: tuple[Any, ...]
    address: Address


def resolve(host: str, port: int, policy: Policy, deadline: float) -> list[Destination]:
    """Every address `host` resolves to, each allowed by `policy`, by the monotonic `deadline`."""
    infos = _getaddrinfo(host, port, deadline)
    found: list[Destination] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = parse(sockaddr[0])
        why = policy.refusal(address)
        if why is not None:
            what = f"{host} is" if parse_or_none(host) == address else f"{host} resolves to {address},"
            raise EgressError(f"{what} a {why} address; OPENIMS_EGRESS_ALLOW can allow it")
        if all(d.sockaddr != sockaddr for d in found):
            found.append(Destination(socket.AddressFamily(family), tuple(sockaddr), address))
    if not found:
        raise EgressError(f"the host name {host} does not resolve")
    return found


def connect(host: str, port: int, policy: Policy, deadline: float) -> socket.socket:
    """A TCP connection to host:port at an address `policy` allows, made by the monotonic `deadline`."""
    last = EgressError(f"cannot connect to {hostport(host, port)}")
    for destination in resolve(host, port, policy, deadline):
        sock = socket.socket(destination.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(left(deadline))
            sock.connect(destination.sockaddr)  # numeric: nothing is resolved again
            return sock
        except TimeoutError:
            sock.close()
            raise EgressError(f"connecting to {hostport(host, port)} ({destination.address}) timed out") from None
        except OSError as exc:
            sock.close()
            last = EgressError(
                f"cannot connect to {hostport(host, port)} ({destination.address}): "
                f"{exc.strerror or exc.__class__.__name__}"
            )
    raise last


def left(deadline: float) -> float:
    """Seconds until the monotonic `deadline`; TimeoutError once it has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError()
    return remaining


def pad(deadline: float) -> None:
    """Wait until the monotonic `deadline`, so that a failure takes as long as the slowest one (a filtered
    port, which only the deadline ends) whatever its cause."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        _sleep(remaining)


_sleep = time.sleep  # a seam for unit tests, which check the padding without waiting for it


def _getaddrinfo(host: str, port: int, deadline: float) -> list[Any]:
    """getaddrinfo bounded by the deadline (it cannot be interrupted, so it runs in a thread of its own)."""
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            result["error"] = exc

    worker = threading.Thread(target=lookup, name="egress-dns", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise EgressError(f"resolving {host} timed out")
    if "error" in result or not result.get("infos"):
        raise EgressError(f"the host name {host} does not resolve")
    infos: list[Any] = result["infos"]
    return infos
