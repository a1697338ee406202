"""SAML metadata: IdP documents are read safely (no DTD, entities or external references; bounded size) and
OpenIMS's own SP metadata is well-formed SAML 2.0."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from defusedxml.ElementTree import fromstring

from openims.config import Settings
from openims.federation import saml_metadata as sm
from openims.federation.sp_metadata import service_provider
from tests.federation_support import MD, billion_laughs, encode, idp_metadata, make_cert, xxe


def reason_of(encoded: str) -> tuple[str, str]:
    with pytest.raises(sm.MetadataError) as info:
        sm.parse_encoded(encoded)
    return info.value.reason, info.value.why


def test_reads_entity_id_endpoints_and_signing_certificates() -> None:
    current, _ = make_cert("idp-signing-2026")
    next_, _ = make_cert("idp-signing-2027", days=730)
    encryption, _ = make_cert("idp-encryption")
    meta = sm.parse_encoded(
        encode(
            idp_metadata(
                "https://idp.example.com/metadata",
                current,
                next_,
                sso_url="https://idp.example.com/sso",
                encryption_cert=encryption,
            )
        )
    )
    assert meta.entity_id == "https://idp.example.com/metadata"
    assert meta.sso_services == (("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", "https://idp.example.com/sso"),)
    assert [c.subject for c in meta.certificates] == ["CN=idp-signing-2026", "CN=idp-signing-2027"]
    first = meta.certificates[0]
    assert first.not_after_ms == int(current.not_valid_after_utc.timestamp() * 1000)
    assert first.not_before_ms == int(current.not_valid_before_utc.timestamp() * 1000)
    assert first.sha256_fingerprint == current.fingerprint(hashes.SHA256()).hex()
    assert first.issuer == "CN=idp-signing-2026" and int(first.serial_number, 16) == current.serial_number


def test_key_descriptor_without_use_signs_and_base64_may_be_wrapped() -> None:
    cert, _ = make_cert("both-uses")
    xml = idp_metadata("urn:example:idp", cert).replace(b' use="signing"', b"")
    text = encode(xml)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert [c.subject for c in sm.parse_encoded(wrapped).certificates] == ["CN=both-uses"]


def test_expired_certificate_is_accepted_and_its_dates_told() -> None:
    old, _ = make_cert("old", expired=True)
    meta = sm.parse_encoded(encode(idp_metadata("urn:example:old", old)))
    assert meta.certificates[0].not_after_ms < meta.certificates[0].not_before_ms + 30 * 86400 * 1000


def test_billion_laughs_is_refused_without_expanding() -> None:
    reason, why = reason_of(encode(billion_laughs()))
    assert reason == "Format" and "DTD" in why


def test_external_entities_never_read_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    reason, why = reason_of(encode(xxe(secret)))
    assert reason == "Format" and "DTD" in why and "TOP-SECRET" not in why
    external_dtd = (
        f'<?xml version="1.0"?><!DOCTYPE md SYSTEM "file://{secret}">'
        f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"/>'
    ).encode()
    assert reason_of(encode(external_dtd))[0] == "Format"
    parameter_entity = (
        f'<?xml version="1.0"?><!DOCTYPE md [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
        f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"/>'
    ).encode()
    assert reason_of(encode(parameter_entity))[0] == "Format"


@pytest.mark.parametrize(
    "document, fragment",
    [
        ("not base64 at all!", "Base64"),
        ("", "empty"),
        (encode(b"<md:EntityDescriptor"), "well-formed"),
        (encode(b"\xff\xfe garbage"), "well-formed"),
        (encode(b'<EntityDescriptor entityID="x"/>'), "md:EntityDescriptor"),
        (
            encode(f'<md:EntityDescriptor xmlns:md="{MD}"><md:IDPSSODescriptor/></md:EntityDescriptor>'.encode()),
            "entityID",
        ),
        (
            encode(
                (
                    f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>'
                ).encode()
            ),
            "IDPSSODescriptor",
        ),
        (
            encode(
                (
                    f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"><md:IDPSSODescriptor/></md:EntityDescriptor>'
                ).encode()
            ),
            "signing certificate",
        ),
    ],
)
def test_malformed_documents_say_why(document: str, fragment: str) -> None:
    reason, why = reason_of(document)
    assert reason == "Format" and fragment in why


def test_certificate_that_is_not_one_is_refused() -> None:
    cert, _ = make_cert("real")
    xml = idp_metadata("urn:example:idp", cert).replace(b"<ds:X509Certificate>\n", b"<ds:X509Certificate>AAAA")
    assert reason_of(encode(xml)) == (
        "Format",
        "holds a signing certificate that is not a Base64 DER X.509 certificate",
    )


def test_size_is_bounded_before_and_after_decoding() -> None:
    cert, _ = make_cert("big")
    padding = b"<!-- " + b"x" * sm.MAX_DOCUMENT_BYTES + b" -->"
    huge = idp_metadata("urn:example:big", cert).replace(b"<md:IDPSSODescriptor", padding + b"<md:IDPSSODescriptor")
    assert reason_of(encode(huge))[0] == "Length"
    with pytest.raises(sm.MetadataError) as info:
        sm.parse(huge)
    assert info.value.reason == "Length"


def test_sp_metadata_is_well_formed_saml() -> None:
    settings = Settings(data_dir=Path("/nonexistent"), database_url="sqlite://", public_url="https://ims.example.com/")
    sp = service_provider(settings, "1234567890123456")
    assert sp.entity_id == "https://ims.example.com/console/saml/metadata/1234567890123456"
    assert sp.acs_url == "https://ims.example.com/console/saml/acs/1234567890123456"
    root = fromstring(sp.metadata_xml(), forbid_dtd=True)
    assert root.tag == f"{{{MD}}}EntityDescriptor" and root.get("entityID") == sp.entity_id
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    assert descriptor is not None
    assert descriptor.get("protocolSupportEnumeration") == "urn:oasis:names:tc:SAML:2.0:protocol"
    children = [child.tag.split("}")[1] for child in descriptor]
    assert children[-1] == "AssertionConsumerService" and set(children[:-1]) == {"NameIDFormat"}
    acs = descriptor.find(f"{{{MD}}}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == sp.acs_url and acs.get("index") == "0"
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert sp.metadata_xml().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
