"""SAML user SSO in a real browser (Debian's Chromium through Playwright): a test identity provider (lxml +
signxml, serving its own pages on another port) signs a RAM user into the console, SP-initiated from the sign-in
page's "Sign in with your identity provider" and IdP-initiated from the IdP; a user the account does not have
gets a refusal page; the RAM user's password is refused while SSO is on, the root's is not; and the root sees on
Settings > Single sign-on what to give the IdP."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.conftest import ROOT_PASSWORD, console_url, set_root_password, shoot, sign_in, sign_out
from tests.saml_idp import IdpServer, SamlIdp, enable_sso, ram_user, sp_of
from tests.support import Account


def test_a_ram_user_signs_in_through_the_identity_provider(page, acct: Account) -> None:  # type: ignore[no-untyped-def]
    backend = acct.server.backend
    upn = ram_user(acct, "alice", password="Alice-pass-2468")
    with IdpServer(SamlIdp(), sp_of(acct), user=upn).running() as idp:
        enable_sso(acct, idp.idp)
        # SP-initiated: from the sign-in page, by the account's alias; back on the page asked for.
        page.goto(console_url(acct, "/signin?next=/console/me"))
        expect(page.get_by_role("heading", name="Sign in with your identity provider")).to_be_visible()
        page.get_by_label("Account alias or ID").fill(acct.alias)
        page.get_by_role("button", name="Continue to your identity provider").click()
        page.wait_for_url(console_url(acct, "/me"))
        assert page.locator(".who .identity").inner_text() == upn
        assert len(idp.requests) == 1
        shoot(page, f"saml-signed-in-{backend}")
        events = [e for e in acct.events(EventName="ConsoleSignin") if "errorCode" not in e]
        assert events[0]["additionalEventData"]["SamlFlow"] == "SP-initiated"
        assert events[0]["userIdentity"]["userName"] == upn
        sign_out(page)

        # IdP-initiated: the user starts at the identity provider's portal.
        page.goto(f"http://localhost:{idp.port}/start")
        page.wait_for_url(console_url(acct, "/"))
        assert page.locator(".who .identity").inner_text() == upn
        sign_out(page)

        # A user the account does not have: a page says so, and no session.
        idp.user = acct.upn("stranger")
        page.goto(f"http://localhost:{idp.port}/start")
        page.wait_for_url(re.compile(r".*/console/saml/acs/.*"))
        expect(page.get_by_role("heading", name="Single sign-on refused")).to_be_visible()
        assert "does not have" in page.get_by_role("alert").inner_text()
        shoot(page, f"saml-refused-{backend}")
        page.goto(console_url(acct, "/me"))
        page.wait_for_url(re.compile(r".*/console/signin.*"))

    # While SSO is on, the RAM user's password is refused, and the form offers the identity provider.
    sign_in(page, acct, upn, "Alice-pass-2468")
    assert "through its identity provider" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Account alias or ID").input_value() == acct.alias
    shoot(page, f"saml-password-refused-{backend}")

    # The root still signs in with its password, and finds what to give the identity provider.
    set_root_password(acct)
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    page.wait_for_url(console_url(acct, "/"))
    page.goto(console_url(acct, "/settings/security"))
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Single sign-on").click()
    sp = sp_of(acct)
    assert page.locator("#sp-entity-id").inner_text() == sp.entity_id
    assert page.locator("#sp-acs-url").inner_text() == sp.acs_url
    assert (
        page.locator("#sp-metadata-url").inner_text()
        == acct.call("GetSamlSsoProperties")["SamlSsoProperties"]["MetadataUrl"]
    )
    assert page.locator("#sso-enabled").inner_text().startswith("Enabled")
    shoot(page, f"saml-settings-{backend}")
