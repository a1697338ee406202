"""OIDC issuer fingerprints: a real TLS handshake with local servers whose certificates the test makes (reached
through an egress policy that allows 127.0.0.1, which the default refuses), the last served certificate pinned,
clean errors for unreachable and non-TLS hosts, and issuer URL rules."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from openims.actions.oidc import issuer_address
from openims.errors import ApiError
from openims.federation import oidc_fingerprint as of
from openims.net import egress
from tests.federation_support import closed_port, make_cert, sha1, silent_server, tls_server

LOCAL = egress.Policy(["127.0.0.1"])


def test_self_signed_issuer_pins_its_own_certificate() -> None:
    cert, key = make_cert("127.0.0.1", san="localhost")
    with tls_server([cert], key) as port:
        found = of.fingerprint("127.0.0.1", port, policy=LOCAL)
    assert found.chain_complete and len(found.chain) == 1
    assert found.pinned.fingerprint == sha1(cert) and len(found.pinned.fingerprint) == 40
    assert found.pinned.subject == "CN=127.0.0.1"
    assert found.pinned.not_after_ms == int(cert.not_valid_after_utc.timestamp() * 1000)


def test_the_last_certificate_served_is_pinned() -> None:
    root = make_cert("Test Root CA", ca=True)
    intermediate = make_cert("Test Intermediate CA", issuer=root, ca=True)
    leaf, leaf_key = make_cert("idp.example.com", issuer=intermediate)
    with tls_server([leaf, intermediate[0], root[0]], leaf_key) as port:
        full = of.fingerprint("127.0.0.1", port, policy=LOCAL)
    assert [c.subject for c in full.chain] == ["CN=idp.example.com", "CN=Test Intermediate CA", "CN=Test Root CA"]
    assert full.pinned.fingerprint == sha1(root[0])
    with tls_server([leaf, intermediate[0]], leaf_key) as port:
        without_root = of.fingerprint("127.0.0.1", port, policy=LOCAL)
    assert without_root.pinned.fingerprint == sha1(intermediate[0])
    assert without_root.pinned.issuer == "CN=Test Root CA"


def test_the_default_policy_refuses_a_local_issuer_without_connecting() -> None:
    cert, key = make_cert("127.0.0.1")
    with tls_server([cert], key) as port:
        with pytest.raises(of.FetchError) as info:
            of.fingerprint("127.0.0.1", port, timeout=0.5)
        assert "loopback" in info.value.why
        assert of.fingerprint("127.0.0.1", port, policy=LOCAL).pinned.fingerprint == sha1(cert)


def test_closed_port_is_unreachable() -> None:
    with pytest.raises(of.FetchError) as info:
        of.fingerprint("127.0.0.1", closed_port(), timeout=0.5, policy=LOCAL)
    assert "cannot connect" in info.value.why


def test_silent_host_times_out_cleanly() -> None:
    with silent_server() as port, pytest.raises(of.FetchError) as info:
        of.fingerprint("127.0.0.1", port, timeout=0.5, policy=LOCAL)
    assert "timed out" in info.value.why


@pytest.fixture
def plaintext_port() -> Iterator[int]:
    """A server that answers anything with plain HTTP, as a misconfigured issuer on port 80 would."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    yield listener.getsockname()[1]
    stop.set()
    worker.join(5)
    listener.close()


def test_a_host_not_speaking_tls_is_a_tls_error(plaintext_port: int) -> None:
    with pytest.raises(of.FetchError) as info:
        of.fingerprint("127.0.0.1", plaintext_port, timeout=1, policy=LOCAL)
    assert "no TLS handshake" in info.value.why


def test_unresolvable_host_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: object, **kwargs: object) -> None:  # the system resolver is not asked: no traffic
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(of.FetchError) as info:
        of.fingerprint("no-such-host.invalid", 443, timeout=0.5)
    assert "does not resolve" in info.value.why


@pytest.mark.parametrize(
    "url, address",
    [
        ("https://oauth.aliyun.com", ("oauth.aliyun.com", 443)),
        ("https://127.0.0.1:8443/realms/main", ("127.0.0.1", 8443)),
        ("https://[::1]:9443", ("::1", 9443)),
        ("https://dev-123.okta.com/oauth2/default", ("dev-123.okta.com", 443)),
    ],
)
def test_valid_issuer_urls(url: str, address: tuple[str, int]) -> None:
    assert issuer_address(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://oauth.example.com",
        "oauth.example.com",
        "https://",
        "https://user:pw@idp.example.com",
        "https://idp.example.com/?tenant=1",
        "https://idp.example.com/#frag",
        "https://idp.example.com:99999",
        "https://idp.example.com:abc",
        "https://idp example.com",
        "https://bad_host!.example.com",
        "ftp://idp.example.com",
    ],
)
def test_invalid_issuer_urls(url: str) -> None:
    with pytest.raises(ApiError) as info:
        issuer_address(url)
    assert info.value.code == "InvalidParameter.IssuerUrl.Format" and info.value.status == 400
