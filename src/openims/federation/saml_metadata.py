"""Safe reading of an identity provider's SAML 2.0 metadata: Base64 -> bounded XML parsed by defusedxml
(no DTD, no entity declarations, no external references) -> entityID, SSO endpoints, signing certificates."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import asdict, dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

# Real IdP metadata (Okta, Entra ID, Google, Keycloak: 2 to 25 KB) stays below this. The official SDKs send it
# Base64-encoded (and partly percent-encoded) in the query string, and the HTTP server refuses URLs over 64 KB,
# so with a larger limit they would meet an opaque HTTP 400 instead of this clear error.
MAX_DOCUMENT_BYTES = 40 * 1024
MAX_ENTITY_ID = 1024  # SAML 2.0 core, section 8.3.6
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
_WHITESPACE = re.compile(rb"\s+")


class MetadataError(ValueError):
    """The document is unusable; `reason` is the error-code suffix (Format or Length)."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason
        self.why = why


@dataclass(frozen=True)
class Certificate:
    """What OpenIMS tells about one signing certificate; times in ms since the epoch."""

    subject: str
    issuer: str
    serial_number: str
    not_before_ms: int
    not_after_ms: int
    sha256_fingerprint: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_services: tuple[tuple[str, str], ...]  # (Binding, Location)
    certificates: tuple[Certificate, ...]
    # The same certificates, DER-encoded: the keys that verify the IdP's SAML Responses.
    signing_certificates: tuple[bytes, ...] = ()

    def sso_location(self, binding: str) -> str | None:
        """The IdP's SingleSignOnService URL for a binding, if it has one."""
        return next((location for b, location in self.sso_services if b == binding and location), None)


def decode(encoded: str) -> bytes:
    """The XML bytes of a Base64 document, refusing anything too large before decoding it."""
    compact = _WHITESPACE.sub(b"", encoded.encode("ascii", "replace"))
    if len(compact) > (MAX_DOCUMENT_BYTES + 2) // 3 * 4:
        raise MetadataError("Length", f"must decode to at most {MAX_DOCUMENT_BYTES // 1024} KB of XML")
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MetadataError("Format", "is not valid Base64") from None
    if not data:
        raise MetadataError("Format", "is empty")
    return data


def parse_encoded(encoded: str) -> IdpMetadata:
    """Decode and parse a Base64 IdP metadata document (the API's EncodedSAMLMetadataDocument)."""
    return parse(decode(encoded))


def parse(xml: bytes) -> IdpMetadata:
    """Parse IdP metadata XML; raise MetadataError for anything unsafe, malformed or not IdP metadata."""
    if len(xml) > MAX_DOCUMENT_BYTES:
        raise MetadataError("Length", f"must be at most {MAX_DOCUMENT_BYTES // 1024} KB of XML")
    try:
        root = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        # DTDs are the vehicle of both entity expansion ("billion laughs") and external entities (XXE).
        raise MetadataError("Format", "must not contain a DTD, entity declarations or external references") from None
    except ParseError as exc:
        raise MetadataError("Format", f"is not well-formed XML ({exc})") from None
    if root.tag != f"{{{MD}}}EntityDescriptor":
        raise MetadataError(
            "Format", f"must be a SAML 2.0 metadata document whose root is md:EntityDescriptor ({{{MD}}})"
        )
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id or len(entity_id) > MAX_ENTITY_ID:
        raise MetadataError("Format", f"must have an entityID of 1 to {MAX_ENTITY_ID} characters")
    idp = root.find(f"{{{MD}}}IDPSSODescriptor")
    if idp is None:
        raise MetadataError("Format", "must describe an identity provider (an md:IDPSSODescriptor element)")
    services = tuple((s.get("Binding", ""), s.get("Location", "")) for s in idp.findall(f"{{{MD}}}SingleSignOnService"))
    texts = _signing_certificate_texts(idp)
    certificates = tuple(_certificate(text) for text in texts)
    if not certificates:
        raise MetadataError(
            "Format",
            "must hold the IdP's signing certificate (md:KeyDescriptor/ds:KeyInfo/ds:X509Data/ds:X509Certificate)",
        )
    return IdpMetadata(entity_id, services, certificates, tuple(_der(text) for text in texts))


def _signing_certificate_texts(idp: Element) -> list[str]:
    texts = []
    for key in idp.findall(f"{{{MD}}}KeyDescriptor"):
        # A KeyDescriptor without `use` serves both signing and encryption.
        if key.get("use", "signing") != "signing":
            continue
        for cert in key.iterfind(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"):
            if cert.text and cert.text.strip() and cert.text not in texts:
                texts.append(cert.text)
    return texts


def _der(text: str) -> bytes:
    return base64.b64decode(_WHITESPACE.sub(b"", text.encode("ascii")), validate=True)


def _certificate(text: str) -> Certificate:
    try:
        cert = x509.load_der_x509_certificate(_der(text))
        return Certificate(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial_number=format(cert.serial_number, "x"),
            not_before_ms=int(cert.not_valid_before_utc.timestamp() * 1000),
            not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
            sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        )
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise MetadataError(
            "Format", "holds a signing certificate that is not a Base64 DER X.509 certificate"
        ) from None
