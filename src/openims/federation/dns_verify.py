"""DNS TXT lookups for domain verification: a small stdlib resolver client, and an offline override file.

`OPENIMS_DNS_TXT_OVERRIDES_FILE` names a JSON file `{"example.com": ["txt value", ...]}` read at every lookup:
a name it lists is answered from it without touching DNS (a test and offline aid). Other names go to the
recursive resolver in `OPENIMS_DNS_SERVER` (`host` or `host:port`), else the first `nameserver` of
/etc/resolv.conf, over UDP (TCP when the answer is truncated), with `OPENIMS_DNS_TIMEOUT_SECONDS` (default 3).

The egress policy (egress.py) does not apply here on purpose: the only host contacted is the resolver the
operator configured, usually a loopback, private or link-local address that the policy would refuse; a caller
chooses only the name asked about, never where the question goes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import struct
from pathlib import Path

TXT, CLASS_IN = 16, 1
RESOLV_CONF = Path("/etc/resolv.conf")


class DnsError(Exception):
    """The lookup itself failed (no resolver, timeout, server failure): the answer is unknown, not empty."""


def lookup_txt(name: str) -> list[str]:
    """Every TXT string published at `name` (each record's strings joined); [] when there is none."""
    name = name.rstrip(".").lower()
    overrides = _overrides()
    if overrides is not None and name in overrides:
        return overrides[name]
    server, port = _server()
    return query_txt(name, server, port, _timeout())


def _overrides() -> dict[str, list[str]] | None:
    path = os.environ.get("OPENIMS_DNS_TXT_OVERRIDES_FILE")
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DnsError(f"cannot read OPENIMS_DNS_TXT_OVERRIDES_FILE: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise DnsError("OPENIMS_DNS_TXT_OVERRIDES_FILE must hold a JSON object {name: [txt values]}")
    return {
        str(k).rstrip(".").lower(): [str(v) for v in (vals if isinstance(vals, list) else [vals])]
        for k, vals in data.items()
    }


def _server() -> tuple[str, int]:
    configured = os.environ.get("OPENIMS_DNS_SERVER", "").strip()
    if configured:
        host, _, port = configured.rpartition(":") if configured.count(":") == 1 else (configured, "", "53")
        return host, int(port or 53)
    try:
        for line in RESOLV_CONF.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1], 53
    except OSError:
        pass
    raise DnsError("no DNS resolver configured: set OPENIMS_DNS_SERVER or add a nameserver to /etc/resolv.conf")


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("OPENIMS_DNS_TIMEOUT_SECONDS", "3")))
    except ValueError:
        return 3.0


def query_txt(name: str, server: str, port: int = 53, timeout: float = 3.0) -> list[str]:
    """Ask `server` (a recursive resolver) for the TXT records of `name`."""
    query_id = secrets.randbelow(65536)
    packet = _question(query_id, name)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            # Connected, so the kernel drops datagrams from anyone but the resolver: a forged answer would have
            # to come from the resolver's address and port, not just guess the query ID.
            sock.connect((server, port))
            sock.send(packet)
            while True:
                reply = sock.recv(65535)
                if len(reply) >= 2 and struct.unpack("!H", reply[:2])[0] == query_id:
                    break
        if len(reply) >= 4 and reply[2] & 0x02:  # truncated: the full answer needs TCP
            with socket.create_connection((server, port), timeout=timeout) as sock:
                sock.sendall(struct.pack("!H", len(packet)) + packet)
                length = struct.unpack("!H", _read_exact(sock, 2))[0]
                reply = _read_exact(sock, length)
    except TimeoutError:
        raise DnsError(f"the DNS server {server} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise DnsError(f"cannot reach the DNS server {server}: {exc.strerror or exc.__class__.__name__}") from None
    return _parse(reply, query_id)


def _question(query_id: int, name: str) -> bytes:
    labels = b"".join(bytes([len(part)]) + part for part in (p.encode("idna") for p in name.split(".") if p))
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", TXT, CLASS_IN)


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise DnsError("the DNS server closed the connection mid-answer")
        data += chunk
    return data


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        if pos >= len(msg):
            raise DnsError("malformed DNS answer")
        length = msg[pos]
        if length & 0xC0 == 0xC0:  # compression pointer: the name ends here
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def _parse(msg: bytes, query_id: int) -> list[str]:
    if len(msg) < 12:
        raise DnsError("malformed DNS answer")
    got_id, flags, qdcount, ancount = struct.unpack("!HHHH", msg[:8])
    if got_id != query_id or not flags & 0x8000:
        raise DnsError("the DNS answer does not match the question")
    rcode = flags & 0x000F
    if rcode == 3:  # NXDOMAIN: the name has no records at all
        return []
    if rcode != 0:
        raise DnsError(f"the DNS server answered with error code {rcode}")
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(msg, pos) + 4
    found = []
    for _ in range(ancount):
        pos = _skip_name(msg, pos)
        if pos + 10 > len(msg):
            raise DnsError("malformed DNS answer")
        rtype, rclass, _ttl, rdlength = struct.unpack("!HHIH", msg[pos : pos + 10])
        pos += 10
        rdata = msg[pos : pos + rdlength]
        pos += rdlength
        if rtype != TXT or rclass != CLASS_IN:
            continue  # e.g. the CNAME that led to the TXT records
        strings, i = [], 0
        while i < len(rdata):
            size = rdata[i]
            strings.append(rdata[i + 1 : i + 1 + size])
            i += 1 + size
        found.append(b"".join(strings).decode("utf-8", "replace"))
    return found
