"""Slow, idle, crowding and vanishing clients against a real `openims serve`, and its JSON log format.

Two servers per database: `quick` has one-second head and body deadlines and a half-second keep-alive timeout
(and logs JSON, so its log can be read record by record); `crowded` has a long head deadline, so slow clients
stay, and a cap of CAP connections. Every loop here is bounded; the bounds are generous and only fail when
something hangs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import backends
from tests.support import Server, free_port, start_server

CAP = 210
SLOW_CLIENTS = 200


@pytest.fixture(scope="module", params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    return str(request.param)


@pytest.fixture(scope="module")
def quick(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "OPENIMS_HEADER_TIMEOUT_SECONDS": "1",
        "OPENIMS_BODY_TIMEOUT_SECONDS": "1",
        "OPENIMS_KEEPALIVE_TIMEOUT_SECONDS": "0.5",
        "OPENIMS_LOG_FORMAT": "json",
    }
    srv, cleanup = start_server(tmp_path_factory.mktemp(f"quick-{backend}"), backend, env)
    try:
        yield srv
    finally:
        cleanup()


@pytest.fixture(scope="module")
def crowded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"OPENIMS_HEADER_TIMEOUT_SECONDS": "120", "OPENIMS_MAX_CONNECTIONS": str(CAP)}
    srv, cleanup = start_server(tmp_path_factory.mktemp(f"crowded-{backend}"), backend, env)
    try:
        yield srv
    finally:
        cleanup()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(sock: socket.socket, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection; fails if it has not within `within` s."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {within} s; it sent {received[:200]!r}")
    return received


def is_open(sock: socket.socket) -> bool:
    """Whether the server still holds the connection, silent (no answer, no close), without waiting."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        pass
    finally:
        sock.settimeout(timeout)
    return False


def log_size(server: Server) -> int:
    return log_path(server).stat().st_size


def log_path(server: Server) -> Path:
    return server.data_dir.parent / f"server-{server.port}.log"


def records_since(server: Server, offset: int) -> list[dict[str, Any]]:
    with log_path(server).open("rb") as log:
        log.seek(offset)
        return [json.loads(line) for line in log.read().decode().splitlines() if line.strip()]


def wait_for_record(server: Server, offset: int, needle: str, within: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        records = records_since(server, offset)
        if any(needle in r["message"] for r in records):
            return records
        time.sleep(0.1)
    pytest.fail(f"no log line mentioning {needle!r} within {within} s")


def test_a_slow_request_head_is_cut_off_at_the_deadline(quick: Server) -> None:
    with connect(quick) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        closed = False
        for _ in range(80):  # a byte every quarter second, for at most 20 s: the deadline is 1 s
            time.sleep(0.25)
            if not is_open(sock):
                closed = True
                break
            with contextlib.suppress(OSError):
                sock.sendall(b"a")
        assert closed, "a request head trickling in for 20 s was still being read"
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    envelope = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert envelope["Code"] == "RequestTimeout" and {"RequestId", "HostId", "Message", "Recommend"} <= set(envelope)


def test_a_connection_that_never_speaks_is_closed(quick: Server) -> None:
    with connect(quick) as sock:
        assert read_until_closed(sock) == b""  # closed without a word: nothing was asked


def test_a_slow_body_gets_408(quick: Server) -> None:
    with connect(quick) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAction=")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Code"] == "RequestTimeout"


def test_an_idle_keep_alive_connection_is_closed(quick: Server) -> None:
    with connect(quick) as sock:
        sock.sendall(b"GET /?Action=GetUser HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" not in head.lower()
        # The keep-alive timeout is 0.5 s; uvicorn's own default would be 5 s, past this bound.
        rest = read_until_closed(sock, within=4.0)
    head, body = head.split(b"\r\n\r\n", 1)
    assert json.loads(body + rest)["Code"] == "IncompleteSignature"  # the whole answer came, then the close


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_bodies_in_pieces_reach_the_application_whole(quick: Server) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    with connect(quick) as sock:  # a body in three chunks, sent apart (within the deadline)
        sock.sendall(head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        body = chunked(b"Action=GetUser&", b"Version=2019-08-15&", b"UserPrincipalName=a")
        for piece in (body[:20], body[20:45], body[45:]):
            sock.sendall(piece)
            time.sleep(0.1)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")  # read whole, and refused for what it is: unsigned
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Code"] == "IncompleteSignature"
    with connect(quick) as sock:  # past the size limit with no length declared: still refused by size
        sock.sendall(head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(OSError):
            sock.sendall(chunked(*[b"a" * 65536] * 20))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Code"] == "RequestTooLarge"


def test_a_client_leaving_mid_body_costs_one_log_line(quick: Server) -> None:
    start = log_size(quick)
    with connect(quick) as sock:
        port = sock.getsockname()[1]
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nAction=GetUser&Password=hunter2"
        )
        time.sleep(0.2)
    records = wait_for_record(quick, start, f":{port} ")
    about = [r for r in records if f":{port} " in r["message"]]
    assert len(about) == 1 and about[0]["level"] == "INFO" and about[0]["source_ip"] == "127.0.0.1"
    assert not [r for r in records if "exc" in r or r["level"] in ("ERROR", "CRITICAL")]
    assert "hunter2" not in json.dumps(records)


def test_a_normal_call_succeeds_while_slow_clients_hold_connections(crowded: Server) -> None:
    acct = crowded.new_account()
    slow = [connect(crowded) for _ in range(SLOW_CLIENTS)]
    stop = threading.Event()

    def trickle() -> None:  # one more byte of each head every second, until the test is done (at most 60 s)
        for _ in range(60):
            if stop.wait(1.0):
                return
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

    try:
        for sock in slow:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        for _ in range(3):  # the SDK's read timeout (30 s) bounds each call
            assert acct.ims().get_default_domain().body.default_domain_name == acct.domain
        assert all(is_open(sock) for sock in slow), "the slow clients did not hold their connections"
    finally:
        stop.set()
        for sock in slow:
            sock.close()


def test_connections_beyond_the_cap_are_refused_at_once(crowded: Server) -> None:
    acct = crowded.new_account()
    held = [connect(crowded) for _ in range(CAP)]
    try:
        for sock in held:
            with contextlib.suppress(OSError):  # (one let go by an earlier test may not be gone yet: refused)
                sock.sendall(b"GET / HTTP/1.1\r\n")  # a head that never completes (the deadline is long)
        with connect(crowded) as extra:
            answer = read_until_closed(extra)  # at once: a connection let in would wait for the 120 s deadline
        if answer:  # a reset instead is as good a refusal, when the client's bytes crossed the close
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Code"] == "ServiceUnavailable"
    finally:
        for sock in held:
            sock.close()
    assert recovers(crowded)
    assert acct.ims().get_default_domain().body.default_domain_name == acct.domain


def recovers(server: Server, within: float = 20.0) -> bool:
    """Whether a new connection is served again once the held ones are gone (closing them takes the server a
    moment)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with connect(server) as sock:
            sock.sendall(b"GET /?Action=GetUser HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if read_until_closed(sock).startswith(b"HTTP/1.1 400 "):  # answered (unsigned), not refused
                return True
        time.sleep(0.2)
    return False


def test_serve_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    """Every line `serve --log-format json` writes, uvicorn's included, from start to shutdown, parses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    env["OPENIMS_HEADER_TIMEOUT_SECONDS"] = "1"
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "openims", "--data-dir", str(tmp_path / "data"), "serve", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, "--log-format", "json"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start within 30 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /?Action=GetUser HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nX-Multi: line\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # fails on the first line that is not JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert all(r["time"].endswith("Z") for r in records)
    uvicorn = " | ".join(r["message"] for r in records if r["logger"] == "uvicorn.error")
    assert "Application startup complete" in uvicorn and "Finished server process" in uvicorn
    limits = [r for r in records if r["logger"] == "openims.api.limits"]
    assert any("request head was not complete" in r["message"] and r["source_ip"] == "127.0.0.1" for r in limits)
