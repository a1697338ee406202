"""Domains: the default domain (official SDK), custom domains proven by a DNS TXT record (OpenIMS-defined actions
through signed RPC calls), and UserPrincipalNames across a change of default domain.

These tests run their own server whose TXT lookups go to a local fake DNS server or to an override file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.conftest import backends
from tests.fake_dns import SERVERS, DnsServer, dns_backed_server
from tests.support import Account, Server


@pytest.fixture(scope="module", params=backends())
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from dns_backed_server(request, tmp_path_factory, "dns")


@pytest.fixture
def dns(server: Server) -> DnsServer:
    return SERVERS[server.port]


def fails(call, code: str, status: int) -> Any:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message
    return info.value


def new_domain() -> str:
    return f"d{uuid.uuid4().hex[:10]}.example.com"


def challenge(acct: Account, domain: str) -> str:
    body = acct.call("GetDomainVerificationRecords", {"DomainName": domain})
    [record] = body["VerificationRecords"]["VerificationRecord"]
    assert (record["RecordType"], record["HostRecord"], record["RecordName"]) == ("TXT", "@", domain)
    return record["RecordValue"]


def verified_domain(acct: Account, dns: DnsServer) -> str:
    domain = new_domain()
    acct.call("AddDomain", {"DomainName": domain})
    dns.dns.records[domain] = [challenge(acct, domain)]
    acct.call("Verify", {"DomainName": domain})
    return domain


def test_default_domain_from_the_start(acct: Account) -> None:
    ims = acct.ims()
    got = ims.get_default_domain().body
    assert got.default_domain_name == acct.domain
    listed = acct.call("ListDomains")["Domains"]["Domain"]
    assert [
        (d["DomainName"], d["DomainType"], d["Status"], d["IsDefault"], d["IsAccountAliasDomain"]) for d in listed
    ] == [(acct.domain, "Auxiliary", "Verified", True, True)]
    alias = acct.call("GetDomainAlias")
    assert alias["DefaultDomainName"] == acct.domain and alias["DomainAliases"]["DomainAlias"] == []
    for name in ("GetDefaultDomain", "ListDomains", "GetDomainAlias"):
        [event] = acct.events(EventName=name)
        assert event["eventRW"] == "Read" and "errorCode" not in event
    assert acct.event_for(got.request_id)["eventName"] == "GetDefaultDomain"


def test_custom_domain_is_verified_through_dns_then_usable(acct: Account, dns: DnsServer) -> None:
    ims = acct.ims()
    domain = new_domain()
    added = acct.call("AddDomain", {"DomainName": domain.upper() + "."})
    view = added["Domain"]
    assert (view["DomainName"], view["DomainType"], view["Status"], view["IsDefault"], view["UserCount"]) == (
        domain,
        "Custom",
        "Pending",
        False,
        0,
    )
    value = view["VerificationRecords"]["VerificationRecord"][0]["RecordValue"]
    assert value.startswith("openims-domain-verification=") and len(value) > 40
    assert challenge(acct, domain) == value == challenge(acct, domain)  # stable per domain

    # pending: not usable for users nor as the default
    fails(
        lambda: ims.create_user(m.CreateUserRequest(user_principal_name=f"ann@{domain}", display_name="Ann")),
        "InvalidParameter.UserPrincipalName.Domain",
        400,
    )
    fails(
        lambda: ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name=domain)),
        "InvalidParameter.DefaultDomainName.NotVerified",
        400,
    )

    # DNS without the record (absent name, then other TXT values): verification fails and says what to publish
    err = fails(
        lambda: acct.call("Verify", {"DomainName": domain}), "InvalidParameter.DomainName.VerificationFailed", 400
    )
    assert value in err.message
    dns.dns.records[domain] = ["v=spf1 -all", "openims-domain-verification=wrong"]
    fails(lambda: acct.call("Verify", {"DomainName": domain}), "InvalidParameter.DomainName.VerificationFailed", 400)
    assert ("udp", domain) in dns.dns.queries

    dns.dns.records[domain] = ["v=spf1 -all", value]
    verified = acct.call("Verify", {"DomainName": domain})
    assert (verified["Domain"]["Status"], verified["Domain"]["DomainName"]) == ("Verified", domain) and verified[
        "Domain"
    ]["VerifyDate"]
    assert acct.call("Verify", {"DomainName": domain})["Domain"]["Status"] == "Verified"  # idempotent

    user = ims.create_user(m.CreateUserRequest(user_principal_name=f"ann@{domain}", display_name="Ann")).body.user
    assert user.user_principal_name == f"ann@{domain}"
    # a verified domain is an alias of the default: the same user under either domain
    assert ims.get_user(m.GetUserRequest(user_principal_name=f"ann@{acct.domain}")).body.user.user_id == user.user_id
    alias = acct.call("GetDomainAlias")["DomainAliases"]["DomainAlias"]
    assert alias == [{"DomainName": domain, "DomainType": "Custom"}]
    listed = {d["DomainName"]: d for d in acct.call("ListDomains")["Domains"]["Domain"]}
    assert listed[domain]["UserCount"] == 1 and listed[domain]["Status"] == "Verified"

    events = acct.events(EventName="Verify")
    assert [e.get("errorCode") for e in events] == [
        None,
        None,
        "InvalidParameter.DomainName.VerificationFailed",
        "InvalidParameter.DomainName.VerificationFailed",
    ]
    assert all(
        (e["eventRW"], e["resourceType"], e["resourceName"]) == ("Write", "ACS::RAM::Domain", domain) for e in events
    )
    [add_event] = acct.events(EventName="AddDomain")
    assert (add_event["eventRW"], add_event["resourceType"], add_event["resourceName"]) == (
        "Write",
        "ACS::RAM::Domain",
        domain,
    )
    assert acct.events(EventName="GetDomainVerificationRecords")[0]["eventRW"] == "Read"


def test_override_file_answers_txt_lookups(acct: Account, dns: DnsServer) -> None:
    domain = new_domain()
    acct.call("AddDomain", {"DomainName": domain})
    dns.publish_in_file(domain, ["unrelated"])
    fails(lambda: acct.call("Verify", {"DomainName": domain}), "InvalidParameter.DomainName.VerificationFailed", 400)
    dns.publish_in_file(domain, [challenge(acct, domain)])
    assert acct.call("Verify", {"DomainName": domain})["Domain"]["Status"] == "Verified"
    assert ("udp", domain) not in dns.dns.queries


def test_dns_failure_is_reported_and_audited(acct: Account, dns: DnsServer) -> None:
    domain = new_domain()
    acct.call("AddDomain", {"DomainName": domain})
    dns.dns.records[domain] = "SERVFAIL"
    err = fails(lambda: acct.call("Verify", {"DomainName": domain}), "ServiceUnavailable.DnsLookup", 503)
    assert domain in err.message
    assert acct.call("ListDomains")["Domains"]["Domain"][-1]["Status"] == "Pending"
    assert acct.events(EventName="Verify")[0]["errorCode"] == "ServiceUnavailable.DnsLookup"


def test_change_of_default_domain_keeps_existing_names(acct: Account, dns: DnsServer, server: Server) -> None:
    ims = acct.ims()
    old = ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("old"), display_name="Old")).body.user
    prefix = "p" + uuid.uuid4().hex[:10]
    auxiliary = f"{prefix}.onaliyun.com"
    changed = ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name=auxiliary.upper())).body
    assert changed.default_domain_name == auxiliary
    assert ims.get_default_domain().body.default_domain_name == auxiliary
    event = acct.event_for(changed.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "SetDefaultDomain",
        "Write",
        "ACS::RAM::Domain",
        auxiliary,
    )

    # the existing user keeps its name and is found under both domains; new users may use either
    for domain in (acct.domain, auxiliary):
        got = ims.get_user(m.GetUserRequest(user_principal_name=f"old@{domain}")).body.user
        assert (got.user_id, got.user_principal_name) == (old.user_id, old.user_principal_name)
    new = ims.create_user(m.CreateUserRequest(user_principal_name=f"new@{auxiliary}", display_name="New")).body.user
    assert new.user_principal_name == f"new@{auxiliary}"
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("still"), display_name="Still"))
    listed = acct.call("ListDomains")["Domains"]["Domain"]
    assert [(d["DomainName"], d["IsDefault"]) for d in listed] == [(auxiliary, True), (acct.domain, False)]
    assert acct.call("GetDomainAlias")["DomainAliases"]["DomainAlias"] == [
        {"DomainName": acct.domain, "DomainType": "Auxiliary"}
    ]

    # a verified custom domain may be the default too
    custom = verified_domain(acct, dns)
    ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name=custom))
    assert ims.get_default_domain().body.default_domain_name == custom
    fails(lambda: acct.call("RemoveDomain", {"DomainName": custom}), "DeleteConflict.Domain.Default", 409)
    ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name=acct.domain))
    assert ims.get_default_domain().body.default_domain_name == acct.domain

    # another account can take neither this account's auxiliary domain nor its alias domain
    other = server.new_account()
    for taken in (auxiliary, acct.domain):
        fails(
            lambda taken=taken: other.ims().set_default_domain(m.SetDefaultDomainRequest(default_domain_name=taken)),
            "EntityAlreadyExists.Domain",
            409,
        )
    fails(lambda: other.call("AddDomain", {"DomainName": custom}), "EntityAlreadyExists.Domain", 409)
    assert other.ims().get_default_domain().body.default_domain_name == other.domain


def test_remove_domain(acct: Account, dns: DnsServer) -> None:
    ims = acct.ims()
    pending = new_domain()
    acct.call("AddDomain", {"DomainName": pending})
    removed = acct.call("RemoveDomain", {"DomainName": pending})
    assert removed["RequestId"]
    fails(lambda: acct.call("GetDomainVerificationRecords", {"DomainName": pending}), "EntityNotExist.Domain", 404)

    domain = verified_domain(acct, dns)
    ims.create_user(m.CreateUserRequest(user_principal_name=f"eve@{domain}", display_name="Eve"))
    fails(lambda: acct.call("RemoveDomain", {"DomainName": domain}), "DeleteConflict.Domain.User", 409)
    ims.update_user(m.UpdateUserRequest(user_principal_name=f"eve@{domain}", new_user_principal_name=acct.upn("eve")))
    acct.call("RemoveDomain", {"DomainName": domain})
    assert [d["DomainName"] for d in acct.call("ListDomains")["Domains"]["Domain"]] == [acct.domain]
    fails(lambda: ims.get_user(m.GetUserRequest(user_principal_name=f"eve@{domain}")), "EntityNotExist.User", 404)
    fails(lambda: acct.call("RemoveDomain", {"DomainName": acct.domain}), "DeleteConflict.Domain.AccountAlias", 409)
    events = acct.events(EventName="RemoveDomain")
    assert [e.get("errorCode") for e in events] == [
        "DeleteConflict.Domain.AccountAlias",
        None,
        "DeleteConflict.Domain.User",
        None,
    ]
    assert all(e["resourceType"] == "ACS::RAM::Domain" and e["eventRW"] == "Write" for e in events)


def test_domain_validation_and_not_found(acct: Account, dns: DnsServer, server: Server) -> None:
    ims = acct.ims()
    domain = new_domain()
    acct.call("AddDomain", {"DomainName": domain})
    cases = [
        (lambda: acct.call("AddDomain", {"DomainName": domain}), "EntityAlreadyExists.Domain", 409),
        (lambda: acct.call("AddDomain", {"DomainName": "x.onaliyun.com"}), "InvalidParameter.DomainName.Reserved", 400),
        (
            lambda: acct.call("AddDomain", {"DomainName": "bad_name.example.com"}),
            "InvalidParameter.DomainName.InvalidChars",
            400,
        ),
        (
            lambda: acct.call("AddDomain", {"DomainName": "a" * 60 + ".example.com"}),
            "InvalidParameter.DomainName.Length",
            400,
        ),
        (lambda: acct.call("AddDomain", {}), "MissingParameter", 400),
        (lambda: acct.call("Verify", {"DomainName": "nope.example.com"}), "EntityNotExist.Domain", 404),
        (lambda: acct.call("RemoveDomain", {"DomainName": "nope.example.com"}), "EntityNotExist.Domain", 404),
        (
            lambda: acct.call("GetDomainVerificationRecords", {"DomainName": "nope.example.com"}),
            "EntityNotExist.Domain",
            404,
        ),
        (
            lambda: ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name="nope.example.com")),
            "EntityNotExist.Domain",
            404,
        ),
        (
            lambda: ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name="-x.onaliyun.com")),
            "InvalidParameter.DefaultDomainName.InvalidChars",
            400,
        ),
        (
            lambda: ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name="a--b.onaliyun.com")),
            "InvalidParameter.DefaultDomainName.InvalidChars",
            400,
        ),
        (
            lambda: ims.set_default_domain(m.SetDefaultDomainRequest(default_domain_name="a" * 60 + ".onaliyun.com")),
            "InvalidParameter.DefaultDomainName.Length",
            400,
        ),
        (lambda: ims.set_default_domain(m.SetDefaultDomainRequest()), "MissingParameter", 400),
    ]
    for call, code, status in cases:
        fails(call, code, status)
    assert ims.get_default_domain().body.default_domain_name == acct.domain
    assert acct.events(EventName="SetDefaultDomain")[0]["errorCode"] == "MissingParameter"

    # a domain verified by one account cannot be verified by another that added it while pending
    other = server.new_account()
    other.call("AddDomain", {"DomainName": domain})
    dns.dns.records[domain] = [challenge(acct, domain), challenge(other, domain)]
    acct.call("Verify", {"DomainName": domain})
    fails(lambda: other.call("Verify", {"DomainName": domain}), "EntityAlreadyExists.Domain", 409)


def test_domain_quota(acct: Account) -> None:
    for _ in range(20):
        acct.call("AddDomain", {"DomainName": new_domain()})
    fails(lambda: acct.call("AddDomain", {"DomainName": new_domain()}), "LimitExceeded.Domain", 409)


def test_txt_value_is_random_per_domain(acct: Account) -> None:
    first, second = new_domain(), new_domain()
    for d in (first, second):
        acct.call("AddDomain", {"DomainName": d})
    assert challenge(acct, first) != challenge(acct, second)
    acct.call("RemoveDomain", {"DomainName": first})
    before = challenge(acct, second)
    acct.call("AddDomain", {"DomainName": first})
    assert challenge(acct, second) == before


def test_verify_asks_dns_only_about_the_callers_pending_domains(acct: Account, dns: DnsServer, server: Server) -> None:
    """The resolver is the operator's and the caller picks only the name; even so, no call makes the server ask
    about a name the account has not added, nor again about one already verified."""
    theirs, never_added = new_domain(), new_domain()
    server.new_account().call("AddDomain", {"DomainName": theirs})
    dns.dns.records[theirs] = dns.dns.records[never_added] = ["anything"]
    for name in (theirs, never_added):
        fails(lambda name=name: acct.call("Verify", {"DomainName": name}), "EntityNotExist.Domain", 404)
    asked = [name for _, name in dns.dns.queries]
    assert theirs not in asked and never_added not in asked

    mine = verified_domain(acct, dns)
    assert mine in [name for _, name in dns.dns.queries]
    before = len(dns.dns.queries)
    assert acct.call("Verify", {"DomainName": mine})["Domain"]["Status"] == "Verified"
    assert len(dns.dns.queries) == before
