"""SAML user SSO over HTTP, as an identity provider's auto-posting page drives it: a Response from a test IdP
(built with lxml and signed with signxml) posted to the ACS that GetSamlSsoProperties advertises opens the RAM
user's console session; expired, replayed (also at another server process), wrongly signed, wrapped,
wrong-audience and wrong-recipient Responses, unknown, deleted and console-disabled users are refused with a
page saying why, and every attempt is a ConsoleSignin event found with LookupEvents."""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from alibabacloud_ims20190815 import models as m
from lxml import etree
from sqlalchemy import func, select

from openims import clock, maintenance
from openims.store.tables.saml_sso import saml_assertions_used, saml_authn_requests
from tests.saml_idp import SamlIdp, Sp, b64, enable_sso, ram_user, read_authn_request, sp_of, wrapped
from tests.support import Account


def post(acct: Account, sp: Sp, xml: bytes, relay_state: str | None = None, base: str = "") -> httpx.Response:
    """What the browser does with the IdP's page: a cross-site form POST of the Response to the ACS."""
    data = {"SAMLResponse": b64(xml)}
    if relay_state is not None:
        data["RelayState"] = relay_state
    path = urlsplit(sp.acs_url).path
    headers = {"Origin": "https://idp.example.net"}
    return httpx.post((base or acct.server.url) + path, data=data, headers=headers, follow_redirects=False, timeout=30)


def signins(acct: Account) -> list[dict[str, object]]:
    return [e for e in acct.events(EventName="ConsoleSignin") if e["additionalEventData"].get("loginType") == "saml"]


def refusal(acct: Account, code: str) -> dict[str, object]:
    found = [e for e in signins(acct) if e.get("errorCode") == code]
    assert found, f"no ConsoleSignin event with errorCode {code}: {[e.get('errorCode') for e in signins(acct)]}"
    return found[0]


def who(acct: Account, response: httpx.Response) -> str:
    """Who the session the ACS opened belongs to: its cookie opens the console's own-account page."""
    assert response.status_code == 303, response.text
    with httpx.Client(base_url=acct.server.url, cookies=response.cookies, timeout=30) as client:
        page = client.get("/console/me")
        assert page.status_code == 200
        found = re.search(r"class=\"identity\"[^>]*>([^<]+)<", page.text)
        assert found, page.text[:2000]
        return html.unescape(found.group(1))


@pytest.fixture
def idp() -> SamlIdp:
    return SamlIdp()


def test_idp_initiated_signin_opens_the_users_console_session(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "alice")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    assert sp.acs_url == f"{acct.server.url}/console/saml/acs/{acct.account_id}"
    signed_in = post(acct, sp, idp.response(sp, upn), relay_state="/console/users")
    assert signed_in.headers["location"] == "/console/users"
    assert who(acct, signed_in) == upn
    # Signed as the whole Response instead of the Assertion: also accepted; a RelayState off the console is not
    # followed (no open redirect).
    again = post(acct, sp, idp.response(sp, upn, sign="response"), relay_state="https://evil.example/")
    assert again.headers["location"] == "/console/"
    event = signins(acct)[0]
    assert event["eventName"] == "ConsoleSignin" and "errorCode" not in event
    assert event["userIdentity"]["userName"] == upn
    assert event["additionalEventData"]["LoginResult"] == "success"
    assert event["additionalEventData"]["SamlFlow"] == "IdP-initiated"
    assert event["additionalEventData"]["SamlIdpEntityId"] == idp.entity_id
    assert event["sourceIpAddress"] == "127.0.0.1"


def test_sp_initiated_signin_checks_in_response_to(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "bob")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    with httpx.Client(base_url=acct.server.url, timeout=30) as browser:
        page = browser.get("/console/saml/login", params={"account": acct.alias, "next": "/console/events"})
        assert page.status_code == 200
        target = html.unescape(re.search(r'content="0;url=([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        assert target.startswith(idp.sso_url + "?SAMLRequest=")
        request, _ = read_authn_request(urlsplit(target).query)
    assert request.get("AssertionConsumerServiceURL") == sp.acs_url
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == sp.entity_id
    answer = idp.response(sp, upn, in_response_to=request.get("ID"))
    signed_in = post(acct, sp, answer)
    assert signed_in.headers["location"] == "/console/events"
    assert who(acct, signed_in) == upn
    assert signins(acct)[0]["additionalEventData"]["SamlFlow"] == "SP-initiated"
    # The request is answered: another Assertion for it, or one for a request never sent, is refused.
    for in_response_to in (request.get("ID"), "_never-sent"):
        refused = post(acct, sp, idp.response(sp, upn, in_response_to=in_response_to))
        assert refused.status_code == 403
        assert "did not send, already answered, or that expired" in refused.text
    assert len([e for e in signins(acct) if e.get("errorCode") == "Saml.UnknownRequest"]) == 2


REFUSED = [
    ("expired", "Saml.Expired", "has expired"),
    ("not-yet-valid", "Saml.NotYetValid", "not valid yet"),
    ("other-key", "Saml.SignatureInvalid", "signature is not the identity provider"),
    ("wrapped", "Saml.SignatureWrapping", "signature wrapping"),
    ("audience", "Saml.AudienceMismatch", "Audience is not this account"),
    ("recipient", "Saml.RecipientMismatch", "Recipient is not this account"),
    ("issuer", "Saml.IssuerMismatch", "Issuer is not the identity provider"),
    ("unsigned", "Saml.SignatureInvalid", "signature is not the identity provider"),
]


def test_an_idp_without_the_redirect_binding_gets_a_posted_authn_request(acct: Account) -> None:
    idp = SamlIdp(redirect_binding=False)
    enable_sso(acct, idp)
    page = httpx.get(f"{acct.server.url}/console/saml/login", params={"account": acct.account_id}, timeout=30)
    assert page.status_code == 200
    assert f'action="{idp.sso_url}"' in page.text
    # The page's policy lets its one form go to the IdP, and nowhere else.
    assert "form-action 'self' http://idp.test;" in page.headers["content-security-policy"]
    value = re.search(r'name="SAMLRequest" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    request = etree.fromstring(base64.b64decode(value))
    assert request.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}AuthnRequest"
    assert request.get("Destination") == idp.sso_url
    assert request.get("AssertionConsumerServiceURL") == sp_of(acct).acs_url


@pytest.mark.parametrize("case, code, says", REFUSED, ids=[case for case, _, _ in REFUSED])
def test_forged_and_stale_responses_are_refused_and_audited(
    acct: Account, idp: SamlIdp, case: str, code: str, says: str
) -> None:
    upn = ram_user(acct, "carol")
    mallory = ram_user(acct, "mallory")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    other = SamlIdp()
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    later = datetime.now(UTC) + timedelta(hours=2)
    xml = {
        "expired": lambda: idp.response(sp, upn, issued=long_ago),
        "not-yet-valid": lambda: idp.response(sp, upn, issued=later),
        "other-key": lambda: idp.response(sp, upn, signing_key=(other.key, other.cert)),
        "wrapped": lambda: wrapped(idp.response(sp, mallory), upn),
        "audience": lambda: idp.response(sp, upn, audience="https://other-sp.example/metadata"),
        "recipient": lambda: idp.response(sp, upn, recipient="https://other-sp.example/acs"),
        "issuer": lambda: idp.response(sp, upn, issuer="https://other-idp.example/"),
        "unsigned": lambda: idp.response(sp, upn, sign="none"),
    }[case]()
    refused = post(acct, sp, xml)
    assert refused.status_code == 403
    assert says in html.unescape(refused.text)
    assert "set-cookie" not in refused.headers
    event = refusal(acct, code)
    assert event["additionalEventData"]["LoginResult"] == "fail"
    assert says in html.unescape(str(event["errorMessage"]))
    # A refused Response names no user: an unverified NameID is whatever the sender typed.
    if case in ("other-key", "wrapped", "unsigned"):
        assert event["userIdentity"]["userName"] == ""
        assert "SamlNameId" not in event["additionalEventData"]


def test_replay_is_refused_in_every_server_process(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "dave")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    xml = idp.response(sp, upn)
    assert post(acct, sp, xml).status_code == 303
    assert post(acct, sp, xml).status_code == 403
    # A second `openims serve` on the same database: the used Assertion ID is in the database, not in memory.
    with acct.server.sibling(OPENIMS_PUBLIC_URL=acct.server.url) as sibling:
        replayed = post(acct, sp, xml, base=sibling.url)
    assert replayed.status_code == 403
    assert "already used" in replayed.text
    events = [e for e in signins(acct) if e.get("errorCode") == "Saml.Replayed"]
    assert len(events) == 2
    assert events[0]["userIdentity"]["userName"] == upn


def test_only_users_who_may_sign_in_get_a_session(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "erin")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    unknown = post(acct, sp, idp.response(sp, acct.upn("nobody")))
    assert unknown.status_code == 403 and "does not have" in unknown.text
    assert refusal(acct, "Saml.UnknownUser")["additionalEventData"]["SamlNameId"] == acct.upn("nobody")
    foreign = post(acct, sp, idp.response(sp, "erin@not-our-domain.example"))
    assert foreign.status_code == 403
    ims = acct.ims()
    # Console logon disabled by an administrator: the IdP's word does not turn it back on.
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Inactive"))
    no_console = post(acct, sp, idp.response(sp, upn))
    assert no_console.status_code == 403 and "Console logon is not enabled" in no_console.text
    assert refusal(acct, "LoginProfile.Inactive")["userIdentity"]["userName"] == upn
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Active"))
    # A deleted user (in the recycle bin) is no one.
    gone = ram_user(acct, "gone")
    ims.delete_user(m.DeleteUserRequest(user_principal_name=gone))
    assert post(acct, sp, idp.response(sp, gone)).status_code == 403
    assert next(e for e in signins(acct) if e["additionalEventData"].get("SamlNameId") == gone)["errorCode"] == (
        "Saml.UnknownUser"
    )
    # SSO turned off: the ACS signs no one in.
    ims.set_user_sso_settings(m.SetUserSsoSettingsRequest(sso_enabled=False))
    off = post(acct, sp, idp.response(sp, upn))
    assert off.status_code == 403
    refusal(acct, "Saml.SsoDisabled")


def test_name_id_with_the_auxiliary_domain_or_bare(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "frank")
    enable_sso(acct, idp, auxiliary_domain="corp.example.com")
    sp = sp_of(acct)
    assert who(acct, post(acct, sp, idp.response(sp, "Frank@corp.example.com"))) == upn
    acct.ims().set_user_sso_settings(m.SetUserSsoSettingsRequest(sso_login_with_domain=False))
    assert who(acct, post(acct, sp, idp.response(sp, "frank"))) == upn
    # Without the domain rule, a NameID with a domain names no one.
    assert post(acct, sp, idp.response(sp, upn)).status_code == 403


def test_password_signin_of_ram_users_is_refused_while_sso_is_on(acct: Account, idp: SamlIdp) -> None:
    upn = ram_user(acct, "grace", password="Console-pass-864")
    enable_sso(acct, idp)
    with httpx.Client(base_url=acct.server.url, timeout=30) as browser:
        form = browser.get("/console/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        refused = browser.post(
            "/console/signin", data={"login": upn, "password": "Console-pass-864", "csrf_token": token}
        )
    assert refused.status_code == 401
    assert "through its identity provider" in html.unescape(refused.text)
    # The form offers the account's identity provider.
    assert f'value="{acct.alias}"' in refused.text
    event = [e for e in acct.events(EventName="ConsoleSignin") if e.get("errorCode") == "LoginProfile.SsoRequired"]
    assert event and event[0]["additionalEventData"]["loginType"] == "password"


def test_housekeeping_purges_used_assertion_ids_and_requests_once_expired(acct: Account, idp: SamlIdp) -> None:
    """The replay table and the pending requests stay bounded: housekeeping removes a used Assertion ID once
    the Assertion would be refused as expired anyway, and an unanswered request after its ten minutes."""
    upn = ram_user(acct, "heidi")
    enable_sso(acct, idp)
    sp = sp_of(acct)
    assert post(acct, sp, idp.response(sp, upn, lifetime=timedelta(minutes=5))).status_code == 303
    assert httpx.get(f"{acct.server.url}/console/saml/login", params={"account": acct.alias}).status_code == 200
    rt = acct.server.runtime

    def mine() -> tuple[int, int]:
        with rt.db.read() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(func.count()).select_from(t).where(t.c.account_id == acct.account_id)).scalar_one()
                for t in (saml_assertions_used, saml_authn_requests)
            )

    assert mine() == (1, 1)
    maintenance.purge(rt)
    assert mine() == (1, 1)
    try:
        clock.set_offset(20 * 60)
        maintenance.purge(rt)
    finally:
        clock.set_offset(0)
    assert mine() == (0, 0)
