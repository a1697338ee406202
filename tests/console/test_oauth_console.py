"""OAuth in a real browser: a RAM user signs in to an application through the console's sign-in and consent
page (Chromium follows the redirect back to the client, which the page's CSP must allow), and the administrator
sees the application, its sign-ins and a new secret, shown once, on the Applications page."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import expect

from tests.console.conftest import ROOT_PASSWORD, console_url, set_root_password, shoot, sign_in
from tests.oauth_support import CALLBACK, PASSWORD, application, authorize_url, client, discovery, user_with_password
from tests.support import Account


def test_a_user_signs_in_to_an_application_and_the_administrator_sees_it(page, acct: Account) -> None:  # type: ignore[no-untyped-def]
    upn = user_with_password(acct, "frank")
    app_id = application(acct, "WebApp")
    oauth = client(acct, app_id, "unused")
    url, _verifier, _nonce = authorize_url(acct, oauth)
    # The client's callback: answered here, as the application would.
    page.context.route(CALLBACK + "*", lambda route: route.fulfill(status=200, body="signed in"))
    page.goto(url)
    page.get_by_label("Login name").fill(upn)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Sign in to Test app").wait_for()
    shoot(page, f"oauth-consent-{acct.server.backend}")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(re.escape(CALLBACK) + r"\?.*"))
    assert "code" in parse_qs(urlsplit(page.url).query)

    # The administrator: the application, its sign-in, and a secret shown once.
    page.context.clear_cookies()
    set_root_password(acct)
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Applications").click()
    expect(page.get_by_role("heading", name="Applications", exact=True)).to_be_visible()
    page.get_by_role("link", name="Test app").click()
    signins = page.locator("section", has=page.get_by_role("heading", name="Recent sign-ins"))
    assert upn in signins.inner_text() and "Granted" in signins.inner_text()
    assert CALLBACK in page.locator("section", has=page.get_by_role("heading", name="Configuration")).inner_text()
    page.get_by_role("button", name="Create secret").click()
    secret = page.locator("#app-secret").inner_text()
    assert len(secret) == 64
    shoot(page, f"oauth-application-{acct.server.backend}")
    # The secret authenticates the application (a bad code, but the client is known: invalid_grant, not
    # invalid_client).
    answer = httpx.post(
        discovery(acct)["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CALLBACK},
        auth=(app_id, secret),
    )
    assert answer.json()["error"] == "invalid_grant"
    page.reload()
    assert page.locator("#app-secret").count() == 0
    assert console_url(acct, f"/applications/{app_id}") == page.url
