"""OIDC identity providers through the official IMS SDK, the issuer fingerprint extension against a local TLS
issuer (through a server that allows 127.0.0.1) and against internal destinations (refused by default, alike
and without a connection), and every call's event."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.federation_support import (
    closed_port,
    listening,
    make_cert,
    recording_listener,
    sha1,
    silent_server,
    tls_server,
)
from tests.support import Account, Server

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


@pytest.fixture(scope="module")
def allowing(server: Server) -> Iterator[Server]:
    """A second server on the same database whose operator allows 127.0.0.1 (OPENIMS_EGRESS_ALLOW): the local
    test issuers are reachable through it, while `server` keeps the default policy."""
    with server.sibling(OPENIMS_EGRESS_ALLOW="127.0.0.1") as other:
        yield other


@pytest.fixture
def local(acct: Account, allowing: Server) -> Account:
    """The test's account, calling the server that may reach 127.0.0.1."""
    return dataclasses.replace(acct, server=allowing)


def failures(acct: Account, issuers: list[str]) -> list[TeaException]:
    """The errors of fingerprint calls for `issuers`, made at once: a failed fetch takes its whole budget."""
    with ThreadPoolExecutor(len(issuers)) as pool:
        return list(pool.map(lambda issuer: error_of(lambda: fingerprint_call(acct, issuer)), issuers))


def the_same_error(errors: list[TeaException], issuers: list[str]) -> None:
    """Every call failed alike: one code, and one message but for the URL it names."""
    assert {(e.code, e.statusCode) for e in errors} == {("InvalidParameter.IssuerUrl.Unreachable", 400)}
    messages = {e.data["Message"].replace(issuer, "<url>") for e, issuer in zip(errors, issuers, strict=True)}
    assert len(messages) == 1, messages
    assert "<url>" in messages.pop()


def test_issuer_fingerprint_is_read_from_a_live_tls_issuer(local: Account) -> None:
    root = make_cert("Issuer Root CA", ca=True)
    leaf, key = make_cert("127.0.0.1", issuer=root)
    with tls_server([leaf, root[0]], key) as port:
        issuer = f"https://127.0.0.1:{port}/realms/main"
        body = fingerprint_call(local, issuer)
    assert body["Fingerprint"] == sha1(root[0]) and body["IssuerUrl"] == issuer and body["ChainComplete"] is True
    assert body["Certificate"]["Subject"] == "CN=Issuer Root CA"
    assert [c["Fingerprint"] for c in body["CertificateChain"]["Certificate"]] == [sha1(leaf), sha1(root[0])]
    provider = create(local, "local", issuer, fingerprints=body["Fingerprint"], client_ids="app")
    assert provider.fingerprints == sha1(root[0])
    event = local.event_for(body["RequestId"])
    assert (event["eventName"], event["eventRW"], event["apiVersion"]) == (
        "GetOIDCIssuerCertFingerprint",
        "Read",
        "2019-08-15",
    )
    assert event["requestParameters"]["IssuerUrl"] == issuer and "errorCode" not in event


def test_internal_destinations_are_refused_alike_and_never_connected_to(acct: Account, local: Account) -> None:
    root = make_cert("Issuer Root CA", ca=True)
    leaf, key = make_cert("127.0.0.1", issuer=root)
    with (
        recording_listener() as (port, accepted),
        recording_listener("::1") as (port6, accepted6),
        tls_server([leaf, root[0]], key) as tls_port,
    ):
        issuers = [
            f"https://127.0.0.1:{port}",
            f"https://127.0.0.1:{closed_port()}/",
            f"https://127.0.0.1:{tls_port}/realms/main",  # a working issuer, on a refused address
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.100.100.200/",
            "https://[fd00:ec2::254]/",
            f"https://[::1]:{port6}/",
            f"https://localhost:{port}/",
            f"https://[::ffff:127.0.0.1]:{port}/",
            f"https://2130706433:{port}/",
            f"https://0x7f.0.0.1:{port}/",
            f"https://017700000001:{port}/",
        ]
        errors = failures(acct, issuers)
        the_same_error(errors, issuers)
        # CreateOIDCProvider only stores the URL: it connects nowhere either.
        create(acct, "internal", f"https://127.0.0.1:{port}/realms/main")
        assert accepted == [] and accepted6 == []

        # The same listener through a server that allows 127.0.0.1 sees the connection (so it would have seen
        # one above); ::1 stays refused there, as the allow-list names 127.0.0.1 only.
        errors = failures(local, [f"https://127.0.0.1:{port}", f"https://[::1]:{port6}/"])
        assert accepted and accepted6 == []
    the_same_error(errors, [f"https://127.0.0.1:{port}", f"https://[::1]:{port6}/"])
    codes = {e["errorCode"] for e in acct.events(EventName="GetOIDCIssuerCertFingerprint")}
    assert codes == {"InvalidParameter.IssuerUrl.Unreachable"}


@pytest.fixture
def plaintext_port() -> Iterator[int]:
    """A server that answers anything with plain HTTP, as a misconfigured issuer on port 80 would."""

    def answer(conn: socket.socket, _peer: Any) -> None:
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with listening(answer) as port:
        yield port


def test_an_allowed_but_unusable_issuer_is_one_clear_client_error(local: Account, plaintext_port: int) -> None:
    """A closed port, a filtered one (a host that never answers) and one that does not speak TLS look alike."""
    with silent_server() as silent:
        issuers = [
            f"https://127.0.0.1:{closed_port()}",
            f"https://127.0.0.1:{silent}",
            f"https://127.0.0.1:{plaintext_port}",
        ]
        the_same_error(failures(local, issuers), issuers)
    err = error_of(lambda: fingerprint_call(local, "http://127.0.0.1:1"))
    assert (err.code, err.statusCode) == ("InvalidParameter.IssuerUrl.Format", 400)
    err = error_of(lambda: fingerprint_call(local, ""))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)
    codes = [e["errorCode"] for e in local.events(EventName="GetOIDCIssuerCertFingerprint")]
    assert (
        codes
        == ["MissingParameter", "InvalidParameter.IssuerUrl.Format"] + ["InvalidParameter.IssuerUrl.Unreachable"] * 3
    )
