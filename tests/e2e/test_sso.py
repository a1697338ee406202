"""User-based SSO settings through the official IMS SDK, OpenIMS's service-provider metadata (signed RPC
calls: the SDK has no such actions), hostile metadata refused, and every call's event."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from alibabacloud_ims20190815 import models as m
from defusedxml.ElementTree import fromstring
from Tea.exceptions import TeaException

from tests.federation_support import MD, billion_laughs, encode, idp_metadata, make_cert, xxe
from tests.support import Account

DEFAULTS = {
    "SsoEnabled": False,
    "SsoLoginWithDomain": True,
    "AuxiliaryDomain": "",
    "MetadataDocument": "",
    "AuthnSignAlgo": "rsa-sha1",
}


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def sdk_view(settings: m.GetUserSsoSettingsResponseBodyUserSsoSettings) -> dict[str, object]:
    return {
        "SsoEnabled": settings.sso_enabled,
        "SsoLoginWithDomain": settings.sso_login_with_domain,
        "AuxiliaryDomain": settings.auxiliary_domain,
        "MetadataDocument": settings.metadata_document,
        "AuthnSignAlgo": settings.authn_sign_algo,
    }


def test_user_sso_settings_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    first = ims.get_user_sso_settings().body
    assert sdk_view(first.user_sso_settings) == DEFAULTS

    err = error_of(lambda: ims.set_user_sso_settings(m.SetUserSsoSettingsRequest(sso_enabled=True)))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)

    cert, _ = make_cert("entra-signing", days=1000)
    document = encode(idp_metadata("https://sts.windows.net/tenant-1/", cert))
    saved = ims.set_user_sso_settings(
        m.SetUserSsoSettingsRequest(
            metadata_document=document,
            sso_enabled=True,
            sso_login_with_domain=False,
            auxiliary_domain="corp.example.com",
            authn_sign_algo="rsa-sha256",
        )
    ).body
    expected = {
        "SsoEnabled": True,
        "SsoLoginWithDomain": False,
        "AuxiliaryDomain": "corp.example.com",
        "MetadataDocument": document,
        "AuthnSignAlgo": "rsa-sha256",
    }
    assert sdk_view(saved.user_sso_settings) == expected  # type: ignore[arg-type]
    got = ims.get_user_sso_settings().body
    assert sdk_view(got.user_sso_settings) == expected
    raw = acct.call("GetUserSsoSettings")["UserSsoSettings"]
    assert raw["IdpEntityId"] == "https://sts.windows.net/tenant-1/"
    assert [(c["Subject"], c["NotAfter"], c["Expired"]) for c in raw["Certificates"]["Certificate"]] == [
        ("CN=entra-signing", cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), False)
    ]

    off = ims.set_user_sso_settings(m.SetUserSsoSettingsRequest(sso_enabled=False)).body
    assert sdk_view(off.user_sso_settings) == {**expected, "SsoEnabled": False}  # type: ignore[arg-type]

    for request_id, name, rw in (
        (first.request_id, "GetUserSsoSettings", "Read"),
        (saved.request_id, "SetUserSsoSettings", "Write"),
        (got.request_id, "GetUserSsoSettings", "Read"),
        (off.request_id, "SetUserSsoSettings", "Write"),
    ):
        event = acct.event_for(request_id)
        assert (event["eventName"], event["eventRW"], event["serviceName"]) == (
            name,
            rw,
            "Ims",
        ) and "errorCode" not in event
    event = acct.event_for(saved.request_id)
    assert (
        event["requestParameters"]["SsoEnabled"].lower() == "true"
        and event["requestParameters"]["AuxiliaryDomain"] == "corp.example.com"
    )
    assert event["responseElements"]["UserSsoSettings"]["IdpEntityId"] == "https://sts.windows.net/tenant-1/"
    assert acct.events(EventName="SetUserSsoSettings")[-1]["errorCode"] == "MissingParameter"
    other = acct.server.new_account()
    assert sdk_view(other.ims().get_user_sso_settings().body.user_sso_settings) == DEFAULTS


def test_hostile_metadata_and_bad_parameters_change_nothing(acct: Account, tmp_path: Path) -> None:
    ims = acct.ims()
    secret = tmp_path / "passwd-like.txt"
    secret.write_text("SSO-SECRET-LINE")
    cases = [
        ({"metadata_document": encode(xxe(secret))}, "InvalidParameter.MetadataDocument.Format"),
        ({"metadata_document": encode(billion_laughs())}, "InvalidParameter.MetadataDocument.Format"),
        ({"metadata_document": "@@not-base64@@"}, "InvalidParameter.MetadataDocument.Format"),
        ({"metadata_document": encode(b"<a/>")}, "InvalidParameter.MetadataDocument.Format"),
        ({"auxiliary_domain": "not a domain"}, "InvalidParameter.AuxiliaryDomain.InvalidChars"),
        ({"auxiliary_domain": "d" * 125 + ".com"}, "InvalidParameter.AuxiliaryDomain.Length"),
        ({"authn_sign_algo": "hmac-sha1"}, "InvalidParameter.AuthnSignAlgo"),
    ]
    for params, code in cases:
        err = error_of(
            lambda params=params: ims.set_user_sso_settings(m.SetUserSsoSettingsRequest(sso_enabled=True, **params))
        )  # type: ignore[arg-type]
        assert (err.code, err.statusCode) == (code, 400), (params, err.code)
        assert "SSO-SECRET" not in err.message
    assert sdk_view(ims.get_user_sso_settings().body.user_sso_settings) == DEFAULTS
    failed = acct.events(EventName="SetUserSsoSettings")
    assert sorted(e["errorCode"] for e in failed) == sorted(code for _, code in cases)
    assert not any("SSO-SECRET" in str(e) for e in failed)


def sp_of(acct: Account) -> dict:
    return acct.call("GetSamlSsoProperties")


def test_service_provider_metadata_is_real_saml(acct: Account) -> None:
    body = sp_of(acct)
    props = body["SamlSsoProperties"]
    assert props["AcsUrl"].endswith(f"/console/saml/acs/{acct.account_id}") and props["AcsUrl"].startswith("http")
    assert (
        props["EntityId"].endswith(f"/console/saml/metadata/{acct.account_id}")
        and props["MetadataUrl"] == props["EntityId"]
    )
    xml = base64.b64decode(props["MetadataDocument"])
    root = fromstring(xml, forbid_dtd=True)
    assert root.tag == f"{{{MD}}}EntityDescriptor" and root.get("entityID") == props["EntityId"]
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    assert sp is not None and "urn:oasis:names:tc:SAML:2.0:protocol" in sp.get("protocolSupportEnumeration", "")
    acs = sp.findall(f"{{{MD}}}AssertionConsumerService")
    assert [(a.get("Binding"), a.get("Location")) for a in acs] == [
        ("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", props["AcsUrl"])
    ]
    # The MetadataUrl serves that same document, publicly, as an identity provider fetches it.
    served = httpx.get(props["MetadataUrl"], timeout=10)
    assert served.status_code == 200 and served.content == xml and "samlmetadata+xml" in served.headers["content-type"]
    assert httpx.get(props["MetadataUrl"].rsplit("/", 1)[0] + "/9999999999999999", timeout=10).status_code == 404
    other = acct.server.new_account()
    assert sp_of(other)["SamlSsoProperties"]["EntityId"] != props["EntityId"]
    event = acct.event_for(body["RequestId"])
    assert (event["eventName"], event["eventRW"], event["apiVersion"], event["resourceType"]) == (
        "GetSamlSsoProperties",
        "Read",
        "2019-08-15",
        "",
    )


def test_saml_sso_settings_join_both_sides(acct: Account) -> None:
    cert, _ = make_cert("google-signing")
    document = encode(idp_metadata("https://accounts.google.com/o/saml2?idpid=C01", cert))
    acct.ims().set_user_sso_settings(m.SetUserSsoSettingsRequest(metadata_document=document, sso_enabled=True))
    body = acct.call("GetSamlSsoSettings")
    settings = body["SamlSsoSettings"]
    assert {k: settings[k] for k in DEFAULTS} == {**DEFAULTS, "SsoEnabled": True, "MetadataDocument": document}
    assert settings["IdpEntityId"] == "https://accounts.google.com/o/saml2?idpid=C01"
    assert settings["ServiceProvider"] == sp_of(acct)["SamlSsoProperties"]
    event = acct.event_for(body["RequestId"])
    assert (event["eventName"], event["eventRW"]) == ("GetSamlSsoSettings", "Read") and "errorCode" not in event
