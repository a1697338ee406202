"""The SAML Response verifier on its own (openims.federation.saml_response), fed by the test IdP (lxml +
signxml): what it accepts, and the forgeries an attacker builds from a genuine Response."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from openims.federation import saml_response as r
from tests.saml_idp import ASSERTION, DS, PROTOCOL, SamlIdp, Sp, wrapped

SP = Sp("https://ims.example.com/console/saml/metadata/1", "https://ims.example.com/console/saml/acs/1")
UPN = "alice@acme.onaliyun.com"


@pytest.fixture(scope="module")
def idp() -> SamlIdp:
    return SamlIdp()


def expected(idp: SamlIdp) -> r.Expected:
    der = idp.cert.public_bytes(serialization.Encoding.DER)
    return r.Expected(idp.entity_id, (der,), SP.entity_id, SP.acs_url)


def now_ms() -> int:
    return int(time.time() * 1000)


def refused(idp: SamlIdp, xml: bytes, at: int | None = None) -> str:
    with pytest.raises(r.Refusal) as info:
        r.verify(xml, expected(idp), at or now_ms())
    return info.value.code


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_a_genuine_response_is_accepted_however_it_is_signed(idp: SamlIdp, sign: str) -> None:
    verified = r.verify(idp.response(SP, UPN, sign=sign, in_response_to="_req-1"), expected(idp), now_ms())
    assert (verified.name_id, verified.in_response_to) == (UPN, "_req-1")
    assert verified.valid_until_ms > now_ms()


def test_the_time_window_allows_two_minutes_of_skew(idp: SamlIdp) -> None:
    issued = datetime.now(UTC)
    xml = idp.response(SP, UPN, issued=issued, lifetime=timedelta(minutes=5))
    ms = int(issued.timestamp() * 1000)
    r.verify(xml, expected(idp), ms + 5 * 60_000 + r.SKEW_MS - 1000)
    assert refused(idp, xml, ms + 5 * 60_000 + r.SKEW_MS + 1000) == r.EXPIRED
    r.verify(xml, expected(idp), ms - r.SKEW_MS)  # NotBefore is 5 s before issue
    assert refused(idp, xml, ms - r.SKEW_MS - 10_000) == r.NOT_YET_VALID


def test_a_second_assertion_beside_the_signed_one_is_refused(idp: SamlIdp) -> None:
    response = etree.fromstring(idp.response(SP, UPN))
    extra = copy.deepcopy(response.find(f"{{{ASSERTION}}}Assertion"))
    response.insert(2, extra)
    assert refused(idp, etree.tostring(response)) == r.MALFORMED


def test_a_signed_response_wrapped_in_a_forged_one_is_refused(idp: SamlIdp) -> None:
    """The genuine signed Response hidden inside a forged outer Response that carries its signature."""
    genuine = etree.fromstring(idp.response(SP, "mallory@acme.onaliyun.com", sign="response"))
    forged = copy.deepcopy(genuine)
    forged.set("ID", "_forged")
    for element in forged.findall(f"{{{DS}}}Signature"):
        forged.remove(element)
    name = forged.find(f"{{{ASSERTION}}}Assertion/{{{ASSERTION}}}Subject/{{{ASSERTION}}}NameID")
    assert name is not None
    name.text = UPN
    signature = genuine.find(f"{{{DS}}}Signature")
    assert signature is not None
    genuine.remove(signature)
    forged.insert(1, signature)
    extensions = etree.SubElement(forged, f"{{{PROTOCOL}}}Extensions")
    extensions.append(genuine)
    assert refused(idp, etree.tostring(forged)) == r.WRAPPED


def test_an_assertion_wrapped_in_a_forged_one_is_refused(idp: SamlIdp) -> None:
    assert refused(idp, wrapped(idp.response(SP, "mallory@acme.onaliyun.com"), UPN)) == r.WRAPPED


def test_a_changed_name_id_breaks_the_signature(idp: SamlIdp) -> None:
    response = etree.fromstring(idp.response(SP, "mallory@acme.onaliyun.com"))
    name = response.find(f"{{{ASSERTION}}}Assertion/{{{ASSERTION}}}Subject/{{{ASSERTION}}}NameID")
    assert name is not None
    name.text = UPN
    assert refused(idp, etree.tostring(response)) == r.SIGNATURE


def test_a_comment_in_the_name_id_does_not_truncate_it(idp: SamlIdp) -> None:
    """Exclusive c14n without comments signs `alice@acme.onaliyun.com.evil` with a comment inside it just the
    same; the name read is the whole signed text, never the part before the comment."""
    xml = idp.response(SP, "alice@acme.onaliyun.com.evil.example").replace(
        b"alice@acme.onaliyun.com.evil.example", b"alice@acme.onaliyun.com<!---->.evil.example"
    )
    assert r.verify(xml, expected(idp), now_ms()).name_id == "alice@acme.onaliyun.com.evil.example"


def test_sha1_signatures_are_refused(idp: SamlIdp) -> None:
    assert refused(idp, idp.response(SP, UPN, algorithm="rsa-sha1")) == r.SIGNATURE


def test_a_dtd_is_refused(idp: SamlIdp) -> None:
    xml = b'<!DOCTYPE r [<!ENTITY x "y">]>' + idp.response(SP, UPN)
    assert refused(idp, xml) == r.MALFORMED


def test_an_encrypted_assertion_is_refused(idp: SamlIdp) -> None:
    response = etree.fromstring(idp.response(SP, UPN))
    etree.SubElement(response, f"{{{ASSERTION}}}EncryptedAssertion")
    assert refused(idp, etree.tostring(response)) == r.MALFORMED


def test_a_failed_status_is_the_idps_refusal(idp: SamlIdp) -> None:
    xml = idp.response(SP, UPN).replace(b"status:Success", b"status:Requester")
    assert refused(idp, xml) == r.IDP_STATUS


def test_decode_bounds_and_checks_base64() -> None:
    for bad in ("", "not base64!", "A" * (r.MAX_RESPONSE_BYTES * 2)):
        with pytest.raises(r.Refusal) as info:
            r.decode(bad)
        assert info.value.code == r.MALFORMED
