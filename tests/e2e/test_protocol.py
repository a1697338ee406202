"""The wire protocol around the actions: routing, formats, error envelopes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from tests.signer import post_form, send, v2_params, v3_request
from tests.support import Account


def test_unknown_action_and_version_are_404_and_audited(acct: Account) -> None:
    response = send(v3_request(acct.server.url, acct.key_id, acct.secret, "FlyToTheMoon", {}))
    assert response.status_code == 404 and response.json()["Code"] == "InvalidAction.NotFound"
    response = send(v3_request(acct.server.url, acct.key_id, acct.secret, "GetUser", {}, version="1999-01-01"))
    assert response.status_code == 404 and response.json()["Code"] == "InvalidVersion"
    assert [(e["errorCode"], e["eventRW"]) for e in acct.events(EventName="FlyToTheMoon")] == [
        ("InvalidAction.NotFound", "Write")
    ]
    send(v3_request(acct.server.url, acct.key_id, acct.secret, "ListPasskeys", {}))
    assert [e["eventRW"] for e in acct.events(EventName="ListPasskeys")] == ["Read"]


def test_xml_format(acct: Account) -> None:
    ok = post_form(acct.server.url, v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {"Format": "XML"}))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(ok.text)
    assert root.tag == "GetDefaultDomainResponse" and root.findtext("DefaultDomainName") == acct.domain
    assert root.findtext("RequestId") == ok.headers["x-acs-request-id"]
    bad = post_form(
        acct.server.url,
        v2_params(acct.key_id, acct.secret, "GetUser", {"Format": "XML", "UserPrincipalName": acct.upn("none")}),
    )
    assert bad.status_code == 404 and bad.headers["content-type"] == "text/xml;charset=utf-8"
    err = ET.fromstring(bad.text)
    assert err.tag == "Error" and err.findtext("Code") == "EntityNotExist.User" and err.findtext("HostId")


def test_xml_stays_well_formed_whatever_a_caller_sends(acct: Account) -> None:
    """Made-up parameter names and control characters end up in events; LookupEvents in XML must still parse."""
    junk = {"9x": "a", "x<y": "b", 'q"t': "c", "ctl": "a\x01b"}
    sent = post_form(acct.server.url, v2_params(acct.key_id, acct.secret, "GetDefaultDomain", junk))
    assert sent.status_code == 200
    looked = post_form(
        acct.server.url,
        v2_params(
            acct.key_id,
            acct.secret,
            "LookupEvents",
            {"Format": "XML", "LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "GetDefaultDomain"},
            version="2020-07-06",
        ),
    )
    root = ET.fromstring(looked.text)
    items = {i.get("Key"): i.text for i in root.iter("Item")}
    assert items["9x"] == "a" and items["x<y"] == "b" and items['q"t'] == "c"
    assert [e.text for e in root.iter("ctl")] == ["a\ufffdb"]
    # A declared parameter refuses control characters outright, so none is stored.
    refused = post_form(
        acct.server.url, v2_params(acct.key_id, acct.secret, "CreateGroup", {"GroupName": "g1", "Comments": "a\x01b"})
    )
    assert refused.status_code == 400 and refused.json()["Code"] == "InvalidParameter.Comments.InvalidChars"


def test_get_with_query_parameters_works_for_v2(acct: Account) -> None:
    params = v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {}, method="GET")
    response = httpx.get(acct.server.url + "/", params=params)
    assert response.status_code == 200 and response.json()["DefaultDomainName"] == acct.domain


def test_oversized_body_is_refused_cleanly(acct: Account) -> None:
    response = httpx.post(
        acct.server.url + "/",
        content=b"a=" + b"x" * (2 << 20),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413 and response.json()["Code"] == "RequestTooLarge"


def test_garbage_is_a_clear_error_never_500(acct: Account) -> None:
    for headers, content in (
        ({"authorization": "garbage"}, b""),
        ({"content-type": "application/x-www-form-urlencoded"}, b"\xff\xfe=\x00"),
        ({"authorization": "ACS3-HMAC-SHA256 Credential=é,SignedHeaders=host,Signature=ü".encode()}, b""),
    ):
        response = httpx.post(acct.server.url + "/", content=content, headers=headers)
        assert 400 <= response.status_code < 500, response.text
        assert {"RequestId", "HostId", "Code", "Message", "Recommend"} <= set(response.json())


def test_hostile_shapes_are_400s_and_other_paths_or_methods_get_the_envelope(acct: Account) -> None:
    """Found by fuzzing: a Unicode digit as a list index, JSON nested thousands deep, a 5,000-digit number.
    Each is bad input (400 with the envelope), never a fault of ours (500)."""
    cases = [
        ("ListUsers", {"Tag.\u00b2.Key": "a"}, "2019-08-15"),
        ("TagResources", {"ResourceId": "[" * 3000 + "]" * 3000, "Tag.1.Key": "k"}, "2019-08-15"),
        ("CreatePolicy", {"PolicyName": "p1", "PolicyDocument": "9" * 5000}, "2015-05-01"),
        (
            "CreatePolicy",
            {"PolicyName": "p2", "PolicyDocument": '{"Version": "1"}', "Tag": '{"a":' * 3000 + "1" + "}" * 3000},
            "2015-05-01",
        ),
        ("SetAccessKeyPolicyForAccount", {"AccessKeyPolicy": "9" * 5000}, "2019-08-15"),
    ]
    log = acct.server.data_dir.parent / f"server-{acct.server.port}.log"
    start = log.stat().st_size
    for action, params, version in cases:
        response = send(v3_request(acct.server.url, acct.key_id, acct.secret, action, params, version=version))
        assert 400 <= response.status_code < 500, (action, response.text)
        assert {"RequestId", "HostId", "Code", "Message", "Recommend"} <= set(response.json())
    with log.open("rb") as written:
        written.seek(start)
        assert b"Traceback" not in written.read()

    elsewhere = httpx.post(acct.server.url + "/somewhere", timeout=10)
    assert elsewhere.status_code == 404 and elsewhere.json()["Code"] == "InvalidURI.NotFound"
    wrong_method = httpx.put(acct.server.url + "/", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["Code"] == "UnsupportedHTTPMethod"
    assert httpx.get(acct.server.url + "/console/no-such-page", timeout=10).status_code == 404  # the console's own
