"""The certificate fingerprint IMS pins for an OIDC issuer: the SHA-1 of the LAST certificate in the chain
the issuer's HTTPS host serves (its top intermediate or root CA), which is what Alibaba Cloud and AWS tell
users to compute with `openssl s_client -showcerts`. The fetch is one bounded TLS handshake, to an address the
egress policy allows."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from openims.net import egress

DEFAULT_TIMEOUT_S = 5.0
_DER = 2  # _ssl.ENCODING_DER


class FetchError(Exception):
    """No certificate chain could be fetched. `why` says what went wrong, for the operator's log only (see
    egress: the caller must not learn whether the address was refused, the port closed or not TLS)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
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


def fingerprint(
    host: str, port: int, timeout: float = DEFAULT_TIMEOUT_S, policy: egress.Policy | None = None
) -> IssuerFingerprint:
    """Connect to host:port over TLS, at an address `policy` allows (by default only public ones), and describe
    the served chain. Every failure takes the whole `timeout`, whatever its cause (see egress)."""
    deadline = time.monotonic() + timeout
    try:
        return _fetch(host, port, policy or egress.Policy(), deadline)
    except FetchError:
        egress.pad(deadline)
        raise


def _fetch(host: str, port: int, policy: egress.Policy, deadline: float) -> IssuerFingerprint:
    try:
        raw = egress.connect(host, port, policy, deadline)
    except egress.EgressError as exc:
        raise FetchError(exc.why) from None
    except TimeoutError:
        raise FetchError(f"connecting to {egress.hostport(host, port)} timed out") from None
    # Nothing is trusted here on purpose: the point is to show the user what to pin, as `openssl s_client` does.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw.settimeout(egress.left(deadline))
        with context.wrap_socket(raw, server_hostname=host) as tls:
            ders, complete = _served_chain(tls)
    except TimeoutError:
        raise FetchError(f"the TLS handshake with {egress.hostport(host, port)} timed out") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc.__class__.__name__
        raise FetchError(f"no TLS handshake with {egress.hostport(host, port)} ({why})") from None
    finally:
        raw.close()
    if not ders:
        raise FetchError(f"{egress.hostport(host, port)} presented no certificate")
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
