"""Test data for federation: certificates made with `cryptography`, SAML IdP metadata documents (good and
hostile), and small local TLS servers standing in for OIDC issuers."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def make_cert(
    cn: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    days: int = 365,
    expired: bool = False,
    san: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `cn`, self-signed unless `issuer` (cert, key) is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def sha1(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex()


def idp_metadata(
    entity_id: str,
    *certs: x509.Certificate,
    sso_url: str = "https://idp.example.com/sso",
    encryption_cert: x509.Certificate | None = None,
) -> bytes:
    """A SAML 2.0 IdP metadata document with the given signing certificates (wrapped over lines, as IdPs do)."""

    def key_descriptor(cert: x509.Certificate, use: str) -> str:
        text = der_b64(cert)
        wrapped = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
        return (
            f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n{wrapped}\n'
            f"</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        )

    keys = "".join(key_descriptor(c, "signing") for c in certs)
    if encryption_cert is not None:
        keys += key_descriptor(encryption_cert, "encryption")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{entity_id}">'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
        f"<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
        f'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso_url}"/>'
        f"</md:IDPSSODescriptor></md:EntityDescriptor>"
    ).encode()


def encode(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def billion_laughs() -> bytes:
    """The classic entity-expansion bomb, as the body of a metadata document."""
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", '  <!ENTITY lol "lol">']
    lines += [f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)]
    lines += ["]>", f'<md:EntityDescriptor xmlns:md="{MD}" entityID="&lol9;"/>']
    return "\n".join(lines).encode()


def xxe(path: Path) -> bytes:
    """An external-entity document that would inline the file at `path` as the entityID."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE md [<!ENTITY xxe SYSTEM "file://{path}">]>\n'
        f'<md:EntityDescriptor xmlns:md="{MD}" entityID="&xxe;"><md:IDPSSODescriptor/></md:EntityDescriptor>'
    ).encode()


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@contextmanager
def tls_server(chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that serves `chain` (leaf first) in its handshakes; yields its port."""
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(_pem(*chain))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)

    def handshake(conn: socket.socket, _peer: Any) -> None:
        try:
            conn.settimeout(5)
            with context.wrap_socket(conn, server_side=True):
                pass  # the handshake is all an issuer-fingerprint fetch needs
        except OSError:
            pass
        finally:
            conn.close()

    with listening(handshake) as port:
        yield port


@contextmanager
def listening(on_accept: Callable[[socket.socket, Any], None], host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP listener on `host` whose thread hands each accepted connection and its peer to `on_accept`;
    yields its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, 0), family=family)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = listener.accept()
            except OSError:
                continue
            on_accept(conn, peer)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        worker.join(5)
        listener.close()


@contextmanager
def recording_listener(host: str = "127.0.0.1") -> Iterator[tuple[int, list[Any]]]:
    """Accepts connections and holds each open, silent; yields its port and the peers that connected."""
    peers: list[Any] = []
    held: list[socket.socket] = []

    def hold(conn: socket.socket, peer: Any) -> None:
        held.append(conn)
        peers.append(peer)

    try:
        with listening(hold, host) as port:
            yield port, peers
    finally:
        for conn in held:
            conn.close()


@contextmanager
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word (a TLS handshake with it can only time out)."""
    with recording_listener() as (port, _peers):
        yield port


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
