"""A tiny DNS server for tests: answers TXT questions from a dict over UDP and TCP on 127.0.0.1.

`records[name]` is a list of TXT values, or "SERVFAIL"; unknown names get NXDOMAIN. An answer too big for
512 bytes goes out over UDP truncated (TC bit, no answers), as real servers do, so clients must retry on TCP.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from typing import Any


def _question(msg: bytes) -> tuple[str, int]:
    labels, pos = [], 12
    while msg[pos]:
        labels.append(msg[pos + 1 : pos + 1 + msg[pos]].decode())
        pos += 1 + msg[pos]
    return ".".join(labels).lower(), pos + 5


def answer(records: dict[str, Any], query: bytes, udp: bool) -> bytes:
    name, end = _question(query)
    qid = struct.unpack("!H", query[:2])[0]
    found = records.get(name)
    if found is None or found == "SERVFAIL":
        rcode = 3 if found is None else 2
        return struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 0, 0, 0) + query[12:end]
    rrs = b""
    for value in found:
        raw = value.encode()
        chunks = b"".join(bytes([len(raw[i : i + 255])]) + raw[i : i + 255] for i in range(0, max(len(raw), 1), 255))
        rrs += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(chunks)) + chunks
    full = struct.pack("!HHHHHH", qid, 0x8180, 1, len(found), 0, 0) + query[12:end] + rrs
    if udp and len(full) > 512:
        return struct.pack("!HHHHHH", qid, 0x8380, 1, 0, 0, 0) + query[12:end]
    return full


class FakeDns:
    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.queries: list[tuple[str, str]] = []
        records, queries = self.records, self.queries

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                queries.append(("udp", _question(data)[0]))
                sock.sendto(answer(records, data, udp=True), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                size = struct.unpack("!H", self.rfile.read(2))[0]
                data = self.rfile.read(size)
                queries.append(("tcp", _question(data)[0]))
                reply = answer(records, data, udp=False)
                self.wfile.write(struct.pack("!H", len(reply)) + reply)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        # DNS needs the same port number for UDP and TCP; a free UDP port may be taken for TCP, so retry.
        for _ in range(50):
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
                break
            except OSError:
                self.udp.server_close()
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        for srv in (self.udp, self.tcp):
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        for srv in (self.udp, self.tcp):
            srv.shutdown()
            srv.server_close()


def dead_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DnsServer:
    """An `openims serve` whose DNS TXT lookups go to a FakeDns, with an override file beside it, and which may
    reach test servers on 127.0.0.1 (OIDC issuers), which the egress policy refuses by default."""

    def __init__(self, tmp: Any, backend: str) -> None:
        from tests.support import start_server

        self.dns = FakeDns()
        self.txt_file = tmp / "txt-overrides.json"
        self.server, self._cleanup = start_server(
            tmp,
            backend,
            extra_env={
                "OPENIMS_DNS_TXT_OVERRIDES_FILE": str(self.txt_file),
                "OPENIMS_DNS_SERVER": self.dns.address,
                "OPENIMS_DNS_TIMEOUT_SECONDS": "2",
                "OPENIMS_EGRESS_ALLOW": "127.0.0.1",
            },
        )

    def publish_in_file(self, name: str, values: list[str]) -> None:
        """Answer `name` from the override file (read by the server at each lookup)."""
        import json

        data = json.loads(self.txt_file.read_text()) if self.txt_file.exists() else {}
        data[name] = values
        tmp = self.txt_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.txt_file)

    def close(self) -> None:
        self._cleanup()
        self.dns.close()


# Running DnsServers by their OpenIMS port, so a test that gets `server` can reach its DNS side.
SERVERS: dict[int, DnsServer] = {}


def dns_backed_server(request: Any, tmp_path_factory: Any, label: str) -> Iterator[Any]:
    """Body of a module-scoped `server` fixture (parametrized by backend) whose DNS lookups are ours."""
    import os

    import pytest

    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    running = DnsServer(tmp_path_factory.mktemp(f"{label}-{request.param}"), request.param)
    SERVERS[running.server.port] = running
    try:
        yield running.server
    finally:
        SERVERS.pop(running.server.port, None)
        running.close()
