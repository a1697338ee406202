"""The certificate fingerprint IMS pins for an OIDC issuer: the SHA-1 of the LAST certificate in the chain
the issuer's HTTPS host serves (its top intermediate or root CA), which is what Alibaba Cloud and AWS tell
users to compute with `openssl s_client -showcerts`. The fetch is one bounded TLS handshake."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

DEFAULT_TIMEOUT_S = 5.0
_DER = 2  # _ssl.ENCODING_DER


class FetchError(Exception):
    """The issuer could not be reached or spoke no usable TLS; `reason` is Unreachable or Tls."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason
        self.why = why


@dataclass(frozen=True)
class ChainCertificate:
    fingerprint: str  # SHA-1, 40 lowercase hex digits
    subject: str
    issuer: str
    not_before_ms: int
    not_after_ms: int


@dataclass(frozen=True)
class IssuerFingerprint:
    host: str
    port: int
    # The certificates as served, leaf first; the pinned one is the last.
    chain: tuple[ChainCertificate, ...]
    # False when only the leaf could be read (a Python without the chain accessors).
    chain_complete: bool

    @property
    def pinned(self) -> ChainCertificate:
        return self.chain[-1]


def fingerprint(host: str, port: int, timeout: float = DEFAULT_TIMEOUT_S) -> IssuerFingerprint:
    """Connect to host:port over TLS within `timeout` seconds in all and describe the served chain."""
    deadline = time.monotonic() + timeout
    address = _resolve(host, port, timeout)
    try:
        raw = socket.create_connection(address, timeout=_left(deadline))
    except TimeoutError:
        raise FetchError("Unreachable", f"connecting to {host}:{port} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise FetchError(
            "Unreachable", f"cannot connect to {host}:{port} ({exc.strerror or exc.__class__.__name__})"
        ) from None
    # Nothing is trusted here on purpose: the point is to show the user what to pin, as `openssl s_client` does.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw.settimeout(_left(deadline))
        with context.wrap_socket(raw, server_hostname=host) as tls:
            ders, complete = _served_chain(tls)
    except TimeoutError:
        raise FetchError("Unreachable", f"the TLS handshake with {host}:{port} timed out after {timeout:g} s") from None
    except (ssl.SSLError, OSError) as exc:
        raise FetchError(
            "Tls", f"no TLS handshake with {host}:{port} ({getattr(exc, 'reason', None) or exc.__class__.__name__})"
        ) from None
    finally:
        raw.close()
    if not ders:
        raise FetchError("Tls", f"{host}:{port} presented no certificate")
    return IssuerFingerprint(host, port, tuple(_describe(d) for d in ders), complete)


def _served_chain(tls: ssl.SSLSocket) -> tuple[list[bytes], bool]:
    """DER certificates in the order the peer sent them. Public from Python 3.13; a private method of the
    same name on the underlying object since 3.10; the leaf alone otherwise."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is not None:
        chain = getter() or []
        return [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in chain], True
    leaf = tls.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), False


def _describe(der: bytes) -> ChainCertificate:
    sha1 = hashes.Hash(hashes.SHA1())
    sha1.update(der)
    try:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        before, after = (
            int(cert.not_valid_before_utc.timestamp() * 1000),
            int(cert.not_valid_after_utc.timestamp() * 1000),
        )
    except ValueError:  # still fingerprintable, just not describable
        subject = issuer = ""
        before = after = 0
    return ChainCertificate(sha1.finalize().hex(), subject, issuer, before, after)


def _resolve(host: str, port: int, timeout: float) -> tuple[str, int]:
    """The first address of host, bounded by `timeout` (getaddrinfo itself cannot be interrupted)."""
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            result["error"] = exc

    worker = threading.Thread(target=lookup, name="oidc-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise FetchError("Unreachable", f"resolving {host} timed out after {timeout:g} s")
    if "error" in result or not result.get("infos"):
        raise FetchError("Unreachable", f"the host name {host} does not resolve")
    family_address = result["infos"][0][4]
    return family_address[0], family_address[1]


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError()
    return left
