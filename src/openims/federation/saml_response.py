"""Verifying an identity provider's SAML 2.0 Response (HTTP-POST binding) for user SSO into the console.

The XML signature is checked by signxml against the IdP's certificates from the stored metadata only (never a
key the Response brings along). Everything read afterwards comes from the element signxml returns as signed:
a canonical re-parse of exactly the signed bytes. An element added beside or around it (XML signature
wrapping), a comment splitting a NameID, or anything outside the signed element is never looked at, except the
Response's unsigned StatusCode, which can only make the sign-in fail.

Then the SAML 2.0 Web Browser SSO profile rules: Issuer is the IdP's entity ID, a bearer SubjectConfirmation
whose Recipient is our ACS URL, the Audience is our SP entity ID, NotBefore/NotOnOrAfter hold within
`SKEW_MS`, Destination (when the Response is signed and names one) is our ACS URL. One-time use of the
Assertion ID and InResponseTo are checked by the caller against the database (federation/saml_sso.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from lxml import etree
from signxml.algorithms import SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": PROTOCOL, "saml": ASSERTION, "ds": DS}
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
# A Response with one Assertion and a few attributes is 4 to 12 KB; Base64 adds a third.
MAX_RESPONSE_BYTES = 128 * 1024
# Clocks of the IdP and OpenIMS may disagree by this much (SAML profiles suggest "a few minutes").
SKEW_MS = 2 * 60 * 1000
MAX_ID = 256
# Public-key signatures with SHA-2 or SHA-3: an HMAC "signature" needs no IdP key at all, SHA-1 is broken.
SIGNATURE_METHODS = frozenset(m for m in SignatureMethod if "SHA1" not in m.name and not m.name.startswith("HMAC"))

# Refusal codes: the ConsoleSignin event's errorCode.
MALFORMED = "Saml.Malformed"
IDP_STATUS = "Saml.IdpStatus"
SIGNATURE = "Saml.SignatureInvalid"
WRAPPED = "Saml.SignatureWrapping"
ISSUER = "Saml.IssuerMismatch"
AUDIENCE = "Saml.AudienceMismatch"
RECIPIENT = "Saml.RecipientMismatch"
DESTINATION = "Saml.DestinationMismatch"
EXPIRED = "Saml.Expired"
NOT_YET_VALID = "Saml.NotYetValid"


class Refusal(Exception):
    """The Response is refused; `code` names the rule it broke, `message` says it to a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Expected:
    """What a Response for this account must say: the IdP (from its metadata) and this SP's addresses."""

    idp_entity_id: str
    certificates: tuple[bytes, ...]  # DER, from the IdP metadata
    audience: str  # our SP entity ID
    acs_url: str


@dataclass(frozen=True)
class Verified:
    """The facts of a verified Assertion."""

    assertion_id: str
    name_id: str
    in_response_to: str | None
    # The last moment the Assertion could be accepted (its NotOnOrAfter, plus the skew): replay rows live so long.
    valid_until_ms: int
    # The IdP's SessionNotOnOrAfter, when it limits the console session.
    session_not_on_or_after_ms: int | None


def decode(form_value: str) -> bytes:
    """The XML of the SAMLResponse form field (Base64), bounded before decoding."""
    compact = "".join(form_value.split())
    if not compact:
        raise Refusal(MALFORMED, "The request carries no SAMLResponse.")
    if len(compact) > MAX_RESPONSE_BYTES * 4 // 3 + 4:
        raise Refusal(MALFORMED, f"The SAMLResponse is larger than {MAX_RESPONSE_BYTES // 1024} KB.")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(MALFORMED, "The SAMLResponse is not valid Base64.") from None


def verify(xml: bytes, expected: Expected, now_ms: int) -> Verified:
    """Verify a Response; raise Refusal for anything a signed-in session must not come from."""
    root = _parse(xml)
    if root.tag != f"{{{PROTOCOL}}}Response":
        raise Refusal(MALFORMED, "The SAMLResponse is not a SAML 2.0 samlp:Response.")
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != SUCCESS:
        code = status.get("Value", "") if status is not None else "none"
        raise Refusal(IDP_STATUS, f"The identity provider did not sign you in (StatusCode {code[:200]}).")
    response, assertion = _signed(xml, root, expected.certificates)
    issuer = _text(assertion.find("saml:Issuer", NS))
    if issuer != expected.idp_entity_id:
        raise Refusal(ISSUER, "The Assertion's Issuer is not the identity provider of the SSO settings.")
    if response is not None:
        destination = response.get("Destination")
        if destination is not None and destination != expected.acs_url:
            raise Refusal(DESTINATION, "The Response's Destination is not this account's ACS URL.")
    assertion_id = assertion.get("ID", "")
    if not assertion_id or len(assertion_id) > MAX_ID:
        raise Refusal(MALFORMED, f"The Assertion must have an ID of 1 to {MAX_ID} characters.")
    name_id = _text(assertion.find("saml:Subject/saml:NameID", NS))
    if not name_id:
        raise Refusal(MALFORMED, "The Assertion names no subject (saml:Subject/saml:NameID).")
    confirmation = _bearer_confirmation(assertion, expected.acs_url, now_ms)
    valid_until = _check_conditions(assertion, expected.audience, now_ms)
    confirmed_until = _time(confirmation.get("NotOnOrAfter"))
    if confirmed_until is not None:
        valid_until = min(valid_until, confirmed_until) if valid_until else confirmed_until
    if not valid_until:
        raise Refusal(MALFORMED, "The Assertion sets no NotOnOrAfter, so it would never expire.")
    in_response_to = confirmation.get("InResponseTo")
    if response is not None and response.get("InResponseTo") not in (None, in_response_to):
        raise Refusal(MALFORMED, "The Response and its Assertion answer different requests (InResponseTo).")
    session_end = _time(_attr(assertion.find("saml:AuthnStatement", NS), "SessionNotOnOrAfter"))
    return Verified(assertion_id, name_id, in_response_to, valid_until + SKEW_MS, session_end)


def _parse(xml: bytes) -> etree._Element:
    if len(xml) > MAX_RESPONSE_BYTES:
        raise Refusal(MALFORMED, f"The SAMLResponse is larger than {MAX_RESPONSE_BYTES // 1024} KB.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError:
        raise Refusal(MALFORMED, "The SAMLResponse is not well-formed XML.") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        # A DTD is the vehicle of entity expansion and external entities: no SAML message needs one.
        raise Refusal(MALFORMED, "The SAMLResponse must not contain a DTD.")
    return root


def _signed(
    xml: bytes, root: etree._Element, certificates: tuple[bytes, ...]
) -> tuple[etree._Element | None, etree._Element]:
    """(the signed Response or None, the signed Assertion), each taken from what signxml verified."""
    if root.find("saml:EncryptedAssertion", NS) is not None:
        raise Refusal(MALFORMED, "Encrypted Assertions are not supported: turn assertion encryption off.")
    if root.find("ds:Signature", NS) is not None:
        response = _verified(xml, "./", certificates, root)
        assertions = response.findall("saml:Assertion", NS)
        if len(assertions) != 1:
            raise Refusal(MALFORMED, "The signed Response must hold exactly one Assertion.")
        return response, assertions[0]
    assertions = root.findall("saml:Assertion", NS)
    if len(assertions) != 1:
        raise Refusal(MALFORMED, "The Response must hold exactly one Assertion.")
    return None, _verified(xml, f"./{{{ASSERTION}}}Assertion/", certificates, assertions[0])


def _verified(xml: bytes, location: str, certificates: tuple[bytes, ...], holder: etree._Element) -> etree._Element:
    """The element signed by the ds:Signature at `location`, verified with one of the IdP's certificates.
    It must be `holder`, the element that signature sits in: a signature that covers some other element
    (moved there by an attacker, who then put their own content where the signed element was) is wrapping."""
    config = SignatureConfiguration(location=location, expect_references=1, signature_methods=SIGNATURE_METHODS)
    reason = "no certificate in the IdP metadata"
    for der in certificates:
        try:
            result = XMLVerifier().verify(xml, x509_cert=x509.load_der_x509_certificate(der), expect_config=config)
        except InvalidCertificate as exc:
            reason = f"the IdP certificate is not valid now ({str(exc)[:200]})"
            continue
        except (InvalidSignature, InvalidDigest, InvalidInput) as exc:
            reason = str(exc).strip(" :")[:300] or type(exc).__name__
            continue
        signed = result.signed_xml  # type: ignore[union-attr]
        if signed is None or signed.tag != holder.tag or not holder.get("ID") or signed.get("ID") != holder.get("ID"):
            raise Refusal(WRAPPED, "The signature covers another element than the one it is in (signature wrapping).")
        return signed
    raise Refusal(SIGNATURE, f"The signature is not the identity provider's ({reason}).")


def _bearer_confirmation(assertion: etree._Element, acs_url: str, now_ms: int) -> etree._Element:
    """The bearer SubjectConfirmationData addressed to us and still valid."""
    found = None
    for confirmation in assertion.findall("saml:Subject/saml:SubjectConfirmation", NS):
        if confirmation.get("Method") != BEARER:
            continue
        data = confirmation.find("saml:SubjectConfirmationData", NS)
        if data is None:
            continue
        if data.get("Recipient") != acs_url:
            found = found or RECIPIENT
            continue
        not_after = _time(data.get("NotOnOrAfter"))
        if not_after is not None and now_ms >= not_after + SKEW_MS:
            found = EXPIRED
            continue
        return data
    if found == RECIPIENT:
        raise Refusal(RECIPIENT, "The Assertion's Recipient is not this account's ACS URL.")
    if found == EXPIRED:
        raise Refusal(EXPIRED, "The Assertion has expired (SubjectConfirmationData NotOnOrAfter).")
    raise Refusal(MALFORMED, "The Assertion has no bearer SubjectConfirmation.")


def _check_conditions(assertion: etree._Element, audience: str, now_ms: int) -> int | None:
    """Check saml:Conditions (time window and audience); returns its NotOnOrAfter, if any."""
    conditions = assertion.find("saml:Conditions", NS)
    if conditions is None:
        raise Refusal(AUDIENCE, "The Assertion has no Conditions, so it is not restricted to this SP's audience.")
    not_before = _time(conditions.get("NotBefore"))
    not_after = _time(conditions.get("NotOnOrAfter"))
    if not_before is not None and now_ms + SKEW_MS < not_before:
        raise Refusal(NOT_YET_VALID, "The Assertion is not valid yet (Conditions NotBefore).")
    if not_after is not None and now_ms >= not_after + SKEW_MS:
        raise Refusal(EXPIRED, "The Assertion has expired (Conditions NotOnOrAfter).")
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        raise Refusal(AUDIENCE, "The Assertion is not restricted to an audience.")
    # Each AudienceRestriction must name us (SAML core 2.5.1.4: all of them must be satisfied).
    for restriction in restrictions:
        if audience not in {_text(a) for a in restriction.findall("saml:Audience", NS)}:
            raise Refusal(AUDIENCE, "The Assertion's Audience is not this account's SP entity ID.")
    return not_after


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _attr(element: etree._Element | None, name: str) -> str | None:
    return element.get(name) if element is not None else None


def _time(value: str | None) -> int | None:
    """xs:dateTime in UTC (`2026-12-03T13:00:00Z`, fractions allowed) -> ms since the epoch."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refusal(MALFORMED, f"{value[:40]!r} is not an xs:dateTime.") from None
    if parsed.tzinfo is None:
        raise Refusal(MALFORMED, f"{value[:40]!r} has no time zone (SAML times are in UTC).")
    return int(parsed.timestamp() * 1000)
