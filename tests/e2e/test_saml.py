"""SAML identity providers for role-based SSO through the official IMS SDK: metadata read safely (hostile
documents refused, no file read), certificates and their expiry reported, limits, and every call's event."""

from __future__ import annotations

from pathlib import Path

import pytest
from alibabacloud_ims20190815 import models as m
from sqlalchemy import func, select
from Tea.exceptions import TeaException

from openims.store.schema import events
from tests.federation_support import billion_laughs, encode, idp_metadata, make_cert, xxe
from tests.support import Account

SAML = "ACS::RAM::SAMLProvider"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def metadata(entity_id: str = "https://idp.example.com/metadata") -> str:
    return encode(idp_metadata(entity_id, make_cert("idp-signing")[0]))


def create(acct: Account, name: str, document: str | None = None, **extra: object) -> m.CreateSAMLProviderResponseBody:
    return (
        acct.ims()
        .create_samlprovider(
            m.CreateSAMLProviderRequest(
                samlprovider_name=name, encoded_samlmetadata_document=document or metadata(), **extra
            )
        )
        .body
    )  # type: ignore[arg-type]


def test_saml_provider_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    signing, _ = make_cert("okta-signing", days=400)
    rollover, _ = make_cert("okta-rollover", days=800)
    document = encode(idp_metadata("http://www.okta.com/exk1", signing, rollover))
    created = create(acct, "okta", document, description="Okta tenant", authn_sign_algo="rsa-sha256")
    provider = created.samlprovider
    assert provider.arn == f"acs:ram::{acct.account_id}:saml-provider/okta"
    assert (provider.samlprovider_name, provider.description, provider.authn_sign_algo) == (
        "okta",
        "Okta tenant",
        "rsa-sha256",
    )
    assert provider.create_date.endswith("Z") and provider.update_date == provider.create_date

    got = ims.get_samlprovider(m.GetSAMLProviderRequest(samlprovider_name="okta")).body
    assert got.samlprovider.encoded_samlmetadata_document == document and got.samlprovider.arn == provider.arn
    raw = acct.call("GetSAMLProvider", {"SAMLProviderName": "okta"})["SAMLProvider"]
    assert raw["IdpEntityId"] == "http://www.okta.com/exk1"
    certs = raw["Certificates"]["Certificate"]
    assert [c["Subject"] for c in certs] == ["CN=okta-signing", "CN=okta-rollover"]
    assert certs[0]["NotAfter"] == signing.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert certs[1]["NotAfter"] == rollover.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert certs[0]["Expired"] is False and len(certs[0]["Fingerprint"]) == 64

    expired, _ = make_cert("expired-signing", expired=True)
    replaced = ims.update_samlprovider(
        m.UpdateSAMLProviderRequest(
            samlprovider_name="okta",
            new_encoded_samlmetadata_document=encode(idp_metadata("urn:okta:new", expired)),
            new_description="rotated",
        )
    ).body
    assert replaced.samlprovider.description == "rotated" and replaced.samlprovider.authn_sign_algo == "rsa-sha256"
    raw = acct.call("GetSAMLProvider", {"SAMLProviderName": "OKTA"})["SAMLProvider"]
    assert raw["IdpEntityId"] == "urn:okta:new" and raw["Certificates"]["Certificate"][0]["Expired"] is True
    algo = ims.update_samlprovider(
        m.UpdateSAMLProviderRequest(samlprovider_name="okta", authn_sign_algo="rsa-sha1")
    ).body
    assert algo.samlprovider.authn_sign_algo == "rsa-sha1" and algo.samlprovider.description == "rotated"

    listed = ims.list_samlproviders(m.ListSAMLProvidersRequest()).body
    assert [(p.samlprovider_name, p.arn) for p in listed.samlproviders.samlprovider] == [("okta", provider.arn)]
    deleted = ims.delete_samlprovider(m.DeleteSAMLProviderRequest(samlprovider_name="okta")).body
    err = error_of(lambda: ims.get_samlprovider(m.GetSAMLProviderRequest(samlprovider_name="okta")))
    assert (err.code, err.statusCode) == ("EntityNotExist.SAMLProvider", 404)

    for request_id, name, rw in (
        (created.request_id, "CreateSAMLProvider", "Write"),
        (got.request_id, "GetSAMLProvider", "Read"),
        (replaced.request_id, "UpdateSAMLProvider", "Write"),
        (algo.request_id, "UpdateSAMLProvider", "Write"),
        (deleted.request_id, "DeleteSAMLProvider", "Write"),
    ):
        event = acct.event_for(request_id)
        assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
            name,
            rw,
            SAML,
            "okta",
        )
        assert "errorCode" not in event
    event = acct.event_for(created.request_id)
    assert event["responseElements"]["SAMLProvider"]["Arn"] == provider.arn
    assert event["requestParameters"]["EncodedSAMLMetadataDocument"].startswith(document[:100])
    listed_event = acct.event_for(listed.request_id)
    assert (listed_event["eventName"], listed_event["eventRW"]) == ("ListSAMLProviders", "Read")


def test_hostile_and_malformed_metadata_is_refused(acct: Account, tmp_path: Path) -> None:
    ims = acct.ims()
    secret = tmp_path / "server-secret.txt"
    secret.write_text("TOP-SECRET-FILE-CONTENT")
    code = "InvalidParameter.EncodedSAMLMetadataDocument.Format"
    cases = [
        (encode(billion_laughs()), code, "DTD"),
        (encode(xxe(secret)), code, "DTD"),
        ("%%% not base64 %%%", code, "Base64"),
        (encode(b"<md:EntityDescriptor entityID="), code, "well-formed XML"),
        (encode(b"<html><body>hello</body></html>"), code, "md:EntityDescriptor"),
        (
            encode(
                idp_metadata("urn:x")
                .replace(b"<md:KeyDescriptor", b"<md:Ignored")
                .replace(b"</md:KeyDescriptor>", b"</md:Ignored>")
            ),
            code,
            "signing certificate",
        ),
    ]
    for document, expected, fragment in cases:
        err = error_of(lambda document=document: create(acct, "hostile", document))
        assert (err.code, err.statusCode) == (expected, 400) and fragment in err.message, (err.code, err.message)
        assert "TOP-SECRET" not in err.message
    big = encode(
        idp_metadata("urn:big").replace(b"<md:IDPSSODescriptor", b"<!--" + b"x" * 42_000 + b"--><md:IDPSSODescriptor")
    )
    err = error_of(lambda: create(acct, "hostile", big))
    assert (err.code, err.statusCode) == ("InvalidParameter.EncodedSAMLMetadataDocument.Length", 400)
    err = error_of(lambda: ims.create_samlprovider(m.CreateSAMLProviderRequest(samlprovider_name="nodoc")))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)

    create(acct, "kept", metadata("urn:kept"))
    err = error_of(
        lambda: ims.update_samlprovider(
            m.UpdateSAMLProviderRequest(samlprovider_name="kept", new_encoded_samlmetadata_document=encode(xxe(secret)))
        )
    )
    assert (err.code, err.statusCode) == ("InvalidParameter.NewEncodedSAMLMetadataDocument.Format", 400)
    assert acct.call("GetSAMLProvider", {"SAMLProviderName": "kept"})["SAMLProvider"]["IdpEntityId"] == "urn:kept"

    failures = acct.events(EventName="CreateSAMLProvider")
    assert sorted(e.get("errorCode", "") for e in failures) == sorted(
        [c for _, c, _ in cases] + ["InvalidParameter.EncodedSAMLMetadataDocument.Length", "MissingParameter", ""]
    )
    assert all(e["resourceType"] == SAML and e["resourceName"] in ("hostile", "nodoc", "kept") for e in failures)
    with acct.server.runtime.db.read() as conn:
        leaked = conn.execute(
            select(func.count())
            .select_from(events)
            .where(events.c.account_id == acct.account_id, events.c.body.contains("TOP-SECRET"))
        ).scalar_one()
    assert leaked == 0
    names = [
        p.samlprovider_name
        for p in ims.list_samlproviders(m.ListSAMLProvidersRequest()).body.samlproviders.samlprovider
    ]
    assert names == ["kept"]


def test_names_duplicates_and_missing_providers(acct: Account) -> None:
    ims = acct.ims()
    create(acct, "AzureAD")
    err = error_of(lambda: create(acct, "azuread"))
    assert (err.code, err.statusCode) == ("EntityAlreadyExists.SAMLProvider", 409)
    for name, code in (
        ("-azure", "InvalidParameter.SAMLProviderName.InvalidChars"),
        ("azure_", "InvalidParameter.SAMLProviderName.InvalidChars"),
        ("a" * 129, "InvalidParameter.SAMLProviderName.Length"),
    ):
        err = error_of(lambda name=name: create(acct, name))
        assert (err.code, err.statusCode) == (code, 400)
    err = error_of(lambda: create(acct, "algo", authn_sign_algo="rsa-md5"))
    assert (err.code, err.statusCode) == ("InvalidParameter.AuthnSignAlgo", 400)
    err = error_of(lambda: ims.update_samlprovider(m.UpdateSAMLProviderRequest(samlprovider_name="AzureAD")))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)
    for call in (
        lambda: ims.update_samlprovider(m.UpdateSAMLProviderRequest(samlprovider_name="ghost", new_description="x")),
        lambda: ims.delete_samlprovider(m.DeleteSAMLProviderRequest(samlprovider_name="ghost")),
        lambda: ims.get_samlprovider(m.GetSAMLProviderRequest(samlprovider_name="ghost")),
    ):
        err = error_of(call)
        assert (err.code, err.statusCode) == ("EntityNotExist.SAMLProvider", 404)
    event = acct.events(EventName="DeleteSAMLProvider")[0]
    assert (event["errorCode"], event["resourceType"], event["resourceName"]) == (
        "EntityNotExist.SAMLProvider",
        SAML,
        "ghost",
    )


def test_provider_limit_and_pagination(acct: Account) -> None:
    ims = acct.ims()
    document = metadata()
    for i in range(100):
        create(acct, f"idp{i:03d}", document)
    err = error_of(lambda: create(acct, "idp100", document))
    assert (err.code, err.statusCode) == ("LimitExceeded.SAMLProvider", 409)
    seen, marker = [], None
    while True:
        body = ims.list_samlproviders(m.ListSAMLProvidersRequest(max_items=40, marker=marker)).body
        seen += [p.samlprovider_name for p in body.samlproviders.samlprovider]
        if not body.is_truncated:
            break
        marker = body.marker
    assert seen == [f"idp{i:03d}" for i in range(100)]
    err = error_of(lambda: ims.list_samlproviders(m.ListSAMLProvidersRequest(max_items=101)))
    assert (err.code, err.statusCode) == ("InvalidParameter.MaxItems", 400)
