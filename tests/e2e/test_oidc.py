"""OIDC identity providers through the official IMS SDK, the issuer fingerprint extension against a local TLS
issuer, and every call's event."""

from __future__ import annotations

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.federation_support import closed_port, make_cert, sha1, silent_server, tls_server
from tests.support import Account

OIDC = "ACS::RAM::OIDCProvider"
FP1, FP2 = "902ef2deeb3c5b13ea4c3d5193629309e231a001", "b8e9f38d8d1b4e0e9ce6a3c9d0a1b2c3d4e5f6a7"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def create(acct: Account, name: str, issuer: str, **extra: object) -> m.CreateOIDCProviderResponseBodyOIDCProvider:
    request = m.CreateOIDCProviderRequest(oidcprovider_name=name, issuer_url=issuer, **extra)  # type: ignore[arg-type]
    return acct.ims().create_oidcprovider(request).body.oidcprovider


def test_oidc_provider_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    created = ims.create_oidcprovider(
        m.CreateOIDCProviderRequest(
            oidcprovider_name="ack-rrsa",
            issuer_url="https://oidc-ack-cn-hangzhou.oss-cn-hangzhou-internal.aliyuncs.com/c1",
            client_ids="sts.aliyuncs.com,app-1",
            fingerprints=FP1.upper(),
            description="RRSA",
            issuance_limit_time=6,
        )
    ).body
    provider = created.oidcprovider
    assert provider.arn == f"acs:ram::{acct.account_id}:oidc-provider/ack-rrsa"
    assert (provider.oidcprovider_name, provider.client_ids, provider.fingerprints) == (
        "ack-rrsa",
        "sts.aliyuncs.com,app-1",
        FP1,
    )
    assert (provider.description, provider.issuance_limit_time) == ("RRSA", 6)
    assert provider.create_date.endswith("Z") and provider.gmt_create == provider.create_date

    got = ims.get_oidcprovider(m.GetOIDCProviderRequest(oidcprovider_name="ack-rrsa")).body
    assert got.oidcprovider.issuer_url == "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou-internal.aliyuncs.com/c1"
    updated = ims.update_oidcprovider(
        m.UpdateOIDCProviderRequest(
            oidcprovider_name="ack-rrsa", new_description="renamed", issuance_limit_time=168, client_ids="only-one"
        )
    ).body
    assert (updated.oidcprovider.description, updated.oidcprovider.issuance_limit_time) == ("renamed", 168)
    assert updated.oidcprovider.client_ids == "only-one"
    untouched = ims.update_oidcprovider(
        m.UpdateOIDCProviderRequest(oidcprovider_name="ack-rrsa", new_description="again")
    ).body
    assert untouched.oidcprovider.client_ids == "only-one" and untouched.oidcprovider.issuance_limit_time == 168

    added = ims.add_client_id_to_oidcprovider(
        m.AddClientIdToOIDCProviderRequest(oidcprovider_name="ack-rrsa", client_id="urn:app/2")
    ).body
    assert added.oidcprovider.client_ids == "only-one,urn:app/2"
    removed = ims.remove_client_id_from_oidcprovider(
        m.RemoveClientIdFromOIDCProviderRequest(oidcprovider_name="ack-rrsa", client_id="only-one")
    ).body
    assert removed.oidcprovider.client_ids == "urn:app/2"
    fp_added = ims.add_fingerprint_to_oidcprovider(
        m.AddFingerprintToOIDCProviderRequest(oidcprovider_name="ack-rrsa", fingerprint=FP2)
    ).body
    assert fp_added.oidcprovider.fingerprints == f"{FP1},{FP2}"
    fp_removed = ims.remove_fingerprint_from_oidcprovider(
        m.RemoveFingerprintFromOIDCProviderRequest(oidcprovider_name="ack-rrsa", fingerprint=FP1.upper())
    ).body
    assert fp_removed.oidcprovider.fingerprints == FP2

    listed = ims.list_oidcproviders(m.ListOIDCProvidersRequest()).body
    assert [p.oidcprovider_name for p in listed.oidcproviders.oidcprovider] == [
        "ack-rrsa"
    ] and listed.is_truncated is False
    deleted = ims.delete_oidcprovider(m.DeleteOIDCProviderRequest(oidcprovider_name="ack-rrsa")).body
    err = error_of(lambda: ims.get_oidcprovider(m.GetOIDCProviderRequest(oidcprovider_name="ack-rrsa")))
    assert err.code == "EntityNotExist.OIDCProvider" and err.statusCode == 404

    calls = [
        (created.request_id, "CreateOIDCProvider", "Write"),
        (got.request_id, "GetOIDCProvider", "Read"),
        (updated.request_id, "UpdateOIDCProvider", "Write"),
        (added.request_id, "AddClientIdToOIDCProvider", "Write"),
        (removed.request_id, "RemoveClientIdFromOIDCProvider", "Write"),
        (fp_added.request_id, "AddFingerprintToOIDCProvider", "Write"),
        (fp_removed.request_id, "RemoveFingerprintFromOIDCProvider", "Write"),
        (deleted.request_id, "DeleteOIDCProvider", "Write"),
    ]
    for request_id, name, rw in calls:
        event = acct.event_for(request_id)
        assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
            name,
            rw,
            OIDC,
            "ack-rrsa",
        )
        assert event["referencedResources"] == {OIDC: ["ack-rrsa"]} and "errorCode" not in event
    listed_event = acct.event_for(listed.request_id)
    assert listed_event["eventName"] == "ListOIDCProviders" and listed_event["eventRW"] == "Read"
    create_event = acct.event_for(created.request_id)
    assert create_event["requestParameters"]["ClientIds"] == "sts.aliyuncs.com,app-1"
    assert create_event["responseElements"]["OIDCProvider"]["Arn"] == provider.arn
    failed = acct.events(EventName="GetOIDCProvider")[0]
    assert failed["errorCode"] == "EntityNotExist.OIDCProvider" and failed["resourceName"] == "ack-rrsa"


def test_parameters_are_validated_as_ims_does(acct: Account) -> None:
    ims = acct.ims()
    cases = [
        (
            {"oidcprovider_name": "-bad", "issuer_url": "https://a.example.com"},
            "InvalidParameter.OIDCProviderName.InvalidChars",
        ),
        (
            {"oidcprovider_name": "x" * 129, "issuer_url": "https://a.example.com"},
            "InvalidParameter.OIDCProviderName.Length",
        ),
        ({"issuer_url": "https://a.example.com"}, "MissingParameter"),
        ({"oidcprovider_name": "p"}, "MissingParameter"),
        ({"oidcprovider_name": "p", "issuer_url": "http://a.example.com"}, "InvalidParameter.IssuerUrl.Format"),
        ({"oidcprovider_name": "p", "issuer_url": "https://a.example.com/?x=1"}, "InvalidParameter.IssuerUrl.Format"),
        ({"oidcprovider_name": "p", "issuer_url": "https://me@a.example.com"}, "InvalidParameter.IssuerUrl.Format"),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com/" + "a" * 240},
            "InvalidParameter.IssuerUrl.Length",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "client_ids": "ok,:bad"},
            "InvalidParameter.ClientIds.InvalidChars",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "client_ids": "c" * 129},
            "InvalidParameter.ClientIds.Length",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "fingerprints": "abc123"},
            "InvalidParameter.Fingerprints.InvalidChars",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "issuance_limit_time": 169},
            "InvalidParameter.IssuanceLimitTime",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "issuance_limit_time": 0},
            "InvalidParameter.IssuanceLimitTime",
        ),
        (
            {"oidcprovider_name": "p", "issuer_url": "https://a.example.com", "description": "d" * 257},
            "InvalidParameter.Description.Length",
        ),
    ]
    for params, code in cases:
        err = error_of(lambda params=params: ims.create_oidcprovider(m.CreateOIDCProviderRequest(**params)))  # type: ignore[arg-type]
        assert (err.code, err.statusCode) == (code, 400), (params, err.code)
    assert sorted(e["errorCode"] for e in acct.events(EventName="CreateOIDCProvider")) == sorted(
        code for _, code in cases
    )
    assert ims.list_oidcproviders(m.ListOIDCProvidersRequest()).body.oidcproviders.oidcprovider == []
    err = error_of(
        lambda: ims.add_fingerprint_to_oidcprovider(
            m.AddFingerprintToOIDCProviderRequest(oidcprovider_name="p", fingerprint="z" * 40)
        )
    )
    assert err.code == "InvalidParameter.Fingerprint.InvalidChars"
    err = error_of(lambda: ims.add_client_id_to_oidcprovider(m.AddClientIdToOIDCProviderRequest(oidcprovider_name="p")))
    assert err.code == "MissingParameter" and err.statusCode == 400


def test_duplicates_and_missing_entries(acct: Account) -> None:
    ims = acct.ims()
    create(acct, "Google", "https://accounts.google.com", client_ids="app", fingerprints=FP1)
    for name, issuer, code in (
        ("google", "https://other.example.com", "EntityAlreadyExists.OIDCProvider"),
        ("other", "https://accounts.google.com", "EntityAlreadyExists.OIDCProvider.IssuerUrl"),
    ):
        err = error_of(lambda name=name, issuer=issuer: create(acct, name, issuer))
        assert (err.code, err.statusCode) == (code, 409)
    assert (
        ims.get_oidcprovider(m.GetOIDCProviderRequest(oidcprovider_name="GOOGLE")).body.oidcprovider.oidcprovider_name
        == "Google"
    )
    cases = [
        (
            lambda: ims.add_client_id_to_oidcprovider(
                m.AddClientIdToOIDCProviderRequest(oidcprovider_name="Google", client_id="app")
            ),
            "EntityAlreadyExists.OIDCProvider.ClientId",
            409,
        ),
        (
            lambda: ims.remove_client_id_from_oidcprovider(
                m.RemoveClientIdFromOIDCProviderRequest(oidcprovider_name="Google", client_id="nope")
            ),
            "EntityNotExist.OIDCProvider.ClientId",
            404,
        ),
        (
            lambda: ims.add_fingerprint_to_oidcprovider(
                m.AddFingerprintToOIDCProviderRequest(oidcprovider_name="Google", fingerprint=FP1.upper())
            ),
            "EntityAlreadyExists.OIDCProvider.Fingerprint",
            409,
        ),
        (
            lambda: ims.remove_fingerprint_from_oidcprovider(
                m.RemoveFingerprintFromOIDCProviderRequest(oidcprovider_name="Google", fingerprint=FP2)
            ),
            "EntityNotExist.OIDCProvider.Fingerprint",
            404,
        ),
        (
            lambda: ims.update_oidcprovider(
                m.UpdateOIDCProviderRequest(oidcprovider_name="nobody", new_description="x")
            ),
            "EntityNotExist.OIDCProvider",
            404,
        ),
        (
            lambda: ims.delete_oidcprovider(m.DeleteOIDCProviderRequest(oidcprovider_name="nobody")),
            "EntityNotExist.OIDCProvider",
            404,
        ),
        (
            lambda: ims.add_client_id_to_oidcprovider(
                m.AddClientIdToOIDCProviderRequest(oidcprovider_name="nobody", client_id="a")
            ),
            "EntityNotExist.OIDCProvider",
            404,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status)
    event = acct.events(EventName="RemoveFingerprintFromOIDCProvider")[0]
    assert event["errorCode"] == "EntityNotExist.OIDCProvider.Fingerprint" and event["resourceName"] == "Google"
    got = ims.get_oidcprovider(m.GetOIDCProviderRequest(oidcprovider_name="Google")).body.oidcprovider
    assert (got.client_ids, got.fingerprints) == ("app", FP1)


def test_limits_per_provider_and_per_account(acct: Account) -> None:
    ims = acct.ims()
    fingerprints = [f"{i:040x}" for i in range(1, 7)]
    client_ids = [f"client-{i}" for i in range(51)]
    err = error_of(lambda: create(acct, "p", "https://p.example.com", client_ids=",".join(client_ids)))
    assert (err.code, err.statusCode) == ("LimitExceeded.OIDCProvider.ClientId", 409)
    err = error_of(lambda: create(acct, "p", "https://p.example.com", fingerprints=",".join(fingerprints)))
    assert (err.code, err.statusCode) == ("LimitExceeded.OIDCProvider.Fingerprint", 409)
    # Repeats count once.
    provider = create(
        acct,
        "p",
        "https://p.example.com",
        client_ids=",".join(client_ids[:50] + client_ids[:3]),
        fingerprints=",".join(fingerprints[:5] + fingerprints[:1]),
    )
    assert len(provider.client_ids.split(",")) == 50 and len(provider.fingerprints.split(",")) == 5
    err = error_of(
        lambda: ims.add_client_id_to_oidcprovider(
            m.AddClientIdToOIDCProviderRequest(oidcprovider_name="p", client_id="one-more")
        )
    )
    assert (err.code, err.statusCode) == ("LimitExceeded.OIDCProvider.ClientId", 409)
    err = error_of(
        lambda: ims.update_oidcprovider(
            m.UpdateOIDCProviderRequest(oidcprovider_name="p", client_ids=",".join(client_ids))
        )
    )
    assert err.code == "LimitExceeded.OIDCProvider.ClientId"
    err = error_of(
        lambda: ims.add_fingerprint_to_oidcprovider(
            m.AddFingerprintToOIDCProviderRequest(oidcprovider_name="p", fingerprint=fingerprints[5])
        )
    )
    assert (err.code, err.statusCode) == ("LimitExceeded.OIDCProvider.Fingerprint", 409)
    assert [e["errorCode"] for e in acct.events(EventName="AddFingerprintToOIDCProvider")] == [
        "LimitExceeded.OIDCProvider.Fingerprint"
    ]

    for i in range(1, 100):
        create(acct, f"idp-{i:03d}", f"https://idp{i}.example.com")
    err = error_of(lambda: create(acct, "idp-100", "https://idp100.example.com"))
    assert (err.code, err.statusCode) == ("LimitExceeded.OIDCProvider", 409)
    seen, marker = [], None
    while True:
        body = ims.list_oidcproviders(m.ListOIDCProvidersRequest(max_items=30, marker=marker)).body
        seen += [p.oidcprovider_name for p in body.oidcproviders.oidcprovider]
        if not body.is_truncated:
            break
        marker = body.marker
    assert len(seen) == 100 and seen == sorted(seen) and "p" in seen


def fingerprint_call(acct: Account, issuer: str) -> dict:
    return acct.call("GetOIDCIssuerCertFingerprint", {"IssuerUrl": issuer})


def test_issuer_fingerprint_is_read_from_a_live_tls_issuer(acct: Account) -> None:
    root = make_cert("Issuer Root CA", ca=True)
    leaf, key = make_cert("127.0.0.1", issuer=root)
    with tls_server([leaf, root[0]], key) as port:
        issuer = f"https://127.0.0.1:{port}/realms/main"
        body = fingerprint_call(acct, issuer)
    assert body["Fingerprint"] == sha1(root[0]) and body["IssuerUrl"] == issuer and body["ChainComplete"] is True
    assert body["Certificate"]["Subject"] == "CN=Issuer Root CA"
    assert [c["Fingerprint"] for c in body["CertificateChain"]["Certificate"]] == [sha1(leaf), sha1(root[0])]
    provider = create(acct, "local", issuer, fingerprints=body["Fingerprint"], client_ids="app")
    assert provider.fingerprints == sha1(root[0])
    event = acct.event_for(body["RequestId"])
    assert (event["eventName"], event["eventRW"], event["apiVersion"]) == (
        "GetOIDCIssuerCertFingerprint",
        "Read",
        "2019-08-15",
    )
    assert event["requestParameters"]["IssuerUrl"] == issuer and "errorCode" not in event


def test_unreachable_issuer_is_a_clear_client_error(acct: Account) -> None:
    err = error_of(lambda: fingerprint_call(acct, f"https://127.0.0.1:{closed_port()}"))
    assert (err.code, err.statusCode) == ("InvalidParameter.IssuerUrl.Unreachable", 400)
    assert "cannot connect to 127.0.0.1" in err.message
    with silent_server() as port:
        err = error_of(lambda: fingerprint_call(acct, f"https://127.0.0.1:{port}"))
    assert (err.code, err.statusCode) == ("InvalidParameter.IssuerUrl.Unreachable", 400)
    assert "timed out" in err.message
    err = error_of(lambda: fingerprint_call(acct, "http://127.0.0.1:1"))
    assert (err.code, err.statusCode) == ("InvalidParameter.IssuerUrl.Format", 400)
    err = error_of(lambda: fingerprint_call(acct, ""))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)
    codes = [e["errorCode"] for e in acct.events(EventName="GetOIDCIssuerCertFingerprint")]
    assert codes == [
        "MissingParameter",
        "InvalidParameter.IssuerUrl.Format",
        "InvalidParameter.IssuerUrl.Unreachable",
        "InvalidParameter.IssuerUrl.Unreachable",
    ]
