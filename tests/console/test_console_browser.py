"""The console in a real browser (Debian's Chromium through Playwright), as an administrator and a RAM user
use it: root sign-in, creating a user who must bind MFA and change the password, that user's first and
second sign-ins, finding it all in the event history, an event's JSON, the CSV export, and the lockout."""

from __future__ import annotations

import csv
import io
import json
import re

from alibabacloud_ims20190815 import models as m
from playwright.sync_api import expect

from openims.credentials import totp
from tests.console.conftest import ROOT_PASSWORD, console_url, set_root_password, shoot, sign_in, sign_out
from tests.support import Account

INITIAL = "Initial-pass-135"
CHANGED = "Changed-pass-246"


def _backend(acct: Account) -> str:
    return acct.server.backend


def test_root_signs_in_and_sees_the_console(page, acct: Account) -> None:  # type: ignore[no-untyped-def]
    set_root_password(acct)
    sign_in(page, acct, acct.alias, "wrong-password-1")
    assert page.get_by_role("alert").inner_text().startswith("The login name or password is incorrect")
    # From the keyboard alone: the login field has the focus, Tab reaches the password, Enter submits.
    page.goto(console_url(acct, "/signin"))
    # The page gives the focus once it has loaded; keys typed before that go nowhere.
    expect(page.get_by_label("Login name")).to_be_focused()
    page.keyboard.type(acct.alias)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(ROOT_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(console_url(acct, "/"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert "root" in page.locator(".who").inner_text()
    shoot(page, f"overview-{_backend(acct)}")
    # Every main page opens from the navigation, by keyboard-reachable links with their names.
    for name, heading in (
        ("Users", "Users"),
        ("Groups", "Groups"),
        ("AccessKeys", "My AccessKeys"),
        ("Event history", "Event history"),
        ("Settings", "Settings"),
    ):
        page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    shoot(page, f"settings-security-{_backend(acct)}")
    # The name fields check their pattern in the browser (Chromium compiles it with the `v` flag, where an
    # unescaped `-` in a class makes the whole pattern invalid, ignored, and logged as an error).
    page.goto(console_url(acct, "/users/new"))
    name = page.get_by_label("User name")
    for typed, mismatch in (("not a name", True), ("good.name-1_x", False)):
        name.fill(typed)
        assert name.evaluate("e => e.validity.patternMismatch") is mismatch, typed
    page.goto(console_url(acct, "/groups"))
    group = page.locator("#GroupName")
    group.fill("bad group")
    assert group.evaluate("e => e.validity.patternMismatch") is True
    # A form whose CSRF token is missing (here removed from the page) is refused, and nothing is created.
    page.goto(console_url(acct, "/users/new"))
    page.get_by_label("User name").fill("forged")
    page.locator("form.form-grid input[name=csrf_token]").evaluate("e => e.remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Create user").click()
    assert posted.value.status == 403
    assert "security token is missing or wrong" in page.content()
    shoot(page, f"csrf-refused-{_backend(acct)}")
    assert acct.upn("forged") not in {
        u.user_principal_name for u in acct.ims().list_users(m.ListUsersRequest()).body.users.user or []
    }
    # On a phone-sized screen no page scrolls sideways: wide tables scroll inside their own box.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/",
        "/users",
        "/groups",
        "/access-keys",
        "/events",
        "/settings/security",
        "/settings/password-policy",
        "/recycle-bin",
        "/me",
    ):
        page.goto(console_url(acct, path))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    shoot(page, f"events-narrow-{_backend(acct)}")
    page.set_viewport_size({"width": 1360, "height": 900})
    # Both sign-ins are ConsoleSignin events of the root identity: one failed, one not.
    signins = acct.events(EventName="ConsoleSignin")
    assert [e.get("errorCode") for e in signins][:2] == [None, "InvalidCredentials"]
    assert signins[0]["userIdentity"]["type"] == "root-account" and signins[0]["eventType"] == "ConsoleSignin"
    sign_out(page)
    assert "You have signed out." in page.content()


def test_user_lifecycle_mfa_password_history_and_export(page, acct: Account) -> None:  # type: ignore[no-untyped-def]
    set_root_password(acct)
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    name = "carol"
    upn = acct.upn(name)

    # Root creates a RAM user with a console password, a forced reset and MFA required.
    page.goto(console_url(acct, "/users/new"))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Display name").fill("Carol")
    page.get_by_label("Allow console sign-in with a password").check()
    page.get_by_label("Initial password").fill(INITIAL)
    page.get_by_label("Require a new password at the first sign-in").check()
    page.get_by_label("Require an MFA device at the first sign-in").check()
    shoot(page, f"user-new-{_backend(acct)}")
    page.get_by_role("button", name="Create user").click()
    assert page.get_by_role("status").inner_text().startswith(f"User {upn} created. It can sign in")
    expect(page.get_by_role("heading", name=upn)).to_be_visible()
    assert "InitialValid" in page.locator("#console-access").locator("..").inner_text()

    # An AccessKey's secret is shown once, on its creation page only.
    page.get_by_role("button", name="Create AccessKey").click()
    secret = page.locator("#key-secret").inner_text()
    key_id = page.locator("#key-id").inner_text()
    assert len(secret) == 30
    shoot(page, f"key-created-{_backend(acct)}")
    # Reloading the page neither shows the secret again nor creates another key.
    page.reload()
    expect(page.get_by_role("heading", name="AccessKey secret already shown")).to_be_visible()
    assert secret not in page.content()
    page.goto(console_url(acct, f"/users/{upn}"))
    assert key_id in page.content() and secret not in page.content()
    assert page.content().count('aria-label="Delete AccessKey LTAI') == 1
    shoot(page, f"user-{_backend(acct)}")
    sign_out(page)

    # First sign-in: the user must bind an MFA device, then change the password, before anything else.
    sign_in(page, acct, upn, INITIAL)
    page.wait_for_url(console_url(acct, "/signin/bind-mfa"))
    page.goto(console_url(acct, "/users"))  # nothing else is reachable yet
    page.wait_for_url(console_url(acct, "/signin/bind-mfa"))
    page.get_by_role("button", name="Create my virtual MFA device").click()
    seed = page.locator("#mfa-seed").inner_text()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    shoot(page, f"bind-mfa-{_backend(acct)}")
    page.reload()  # the key is not shown twice, and no other device is created
    assert seed not in page.content()
    expect(page.get_by_role("button", name="Bind MFA device")).to_be_visible()
    assert "were shown once" in page.get_by_role("status").inner_text()
    step = totp.current_step()
    page.get_by_label("First code").fill(totp.code_at(seed, step - 1))
    page.get_by_label("Second code").fill(totp.code_at(seed, step))
    page.get_by_role("button", name="Bind MFA device").click()
    page.wait_for_url(console_url(acct, "/signin/change-password"))
    assert seed not in page.content()
    page.get_by_label("Current password").fill(INITIAL)
    page.get_by_label("New password", exact=True).fill(CHANGED)
    page.get_by_label("Confirm the new password").fill(CHANGED)
    shoot(page, f"change-password-{_backend(acct)}")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(console_url(acct, "/"))
    assert page.get_by_role("status").inner_text() == "Your password has been changed."
    sign_out(page)

    # Second sign-in: the new password, then a code from the bound device.
    sign_in(page, acct, upn, CHANGED)
    page.wait_for_url(re.compile(r".*/console/signin/mfa.*"))
    shoot(page, f"signin-mfa-{_backend(acct)}")
    page.get_by_label("MFA code").fill(totp.code_at(seed, totp.current_step() + 1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(console_url(acct, "/"))
    assert "yes" in page.locator("dt:has-text('MFA this session') + dd").inner_text()
    sign_out(page)

    # Root finds those actions in the event history by filter.
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    page.goto(console_url(acct, "/events"))
    page.get_by_label("Event name").fill("BindMFADevice")
    page.get_by_label("User", exact=True).fill(upn)
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("#events-table tbody tr")
    assert rows.count() == 1 and "BindMFADevice" in rows.first.inner_text()
    page.get_by_label("Event name").fill("ChangePassword")
    page.get_by_role("button", name="Apply filters").click()
    assert rows.count() == 1 and "OK" in rows.first.inner_text()
    page.get_by_label("Event name").fill("ConsoleSignin")
    page.get_by_role("button", name="Apply filters").click()
    assert rows.count() == 3  # the first sign-in, the password step of the second, and its MFA step
    page.locator("svg.chart").wait_for()  # the chart arrives after the table
    assert "3 in total" in page.locator("svg.chart title#chart-title").text_content()
    shoot(page, f"events-{_backend(acct)}")

    # One event's full JSON: the console operation as recorded, with no secret in it.
    page.get_by_label("Event name").fill("BindMFADevice")
    page.get_by_role("button", name="Apply filters").click()
    page.locator("#events-table tbody tr").first.get_by_role("link", name="BindMFADevice").click()
    record = json.loads(page.locator("#event-json").inner_text())
    assert record["eventName"] == "BindMFADevice" and record["eventType"] == "ConsoleOperation"
    assert record["userIdentity"]["userName"] == upn and record["userIdentity"]["accessKeyId"] == ""
    assert record["requestParameters"]["AuthenticationCode1"] == "******"
    assert seed not in page.content()
    shoot(page, f"event-{_backend(acct)}")

    # The filtered history as CSV: every ConsoleSignin of the user, the newest first.
    page.goto(console_url(acct, f"/events?range=24h&EventName=ConsoleSignin&User={upn}"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    rows_csv = list(csv.DictReader(io.StringIO(text)))
    assert [r["eventName"] for r in rows_csv] == ["ConsoleSignin"] * 3
    assert {r["userName"] for r in rows_csv} == {upn}
    assert [r["mfaUsed"] for r in rows_csv] == ["true", "false", "false"]
    assert [r["errorCode"] for r in rows_csv] == ["", "MFA.CodeRequired", ""]
    for secret_text in (INITIAL, CHANGED, seed, secret):
        assert secret_text not in text

    # The same history through the API: the console's changes are ConsoleOperation events of the same actions.
    created = acct.events(EventName="CreateUser", ResourceName=upn)[0]
    assert created["eventType"] == "ConsoleOperation" and created["userIdentity"]["type"] == "root-account"
    assert created["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    profile = acct.events(EventName="CreateLoginProfile", ResourceName=upn)[0]
    assert profile["requestParameters"]["Password"] == "******"
    key_event = acct.events(EventName="CreateAccessKey", ResourceName=key_id)[0]
    assert secret not in json.dumps(key_event)
    assert key_event["responseElements"]["AccessKey"]["AccessKeySecret"] == "******"


def test_lockout_after_repeated_wrong_passwords(page, acct: Account) -> None:  # type: ignore[no-untyped-def]
    set_root_password(acct)
    upn = acct.upn("dave")
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Dave"))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=INITIAL))

    # Root sets MaxLoginAttemps in the password policy page.
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    page.goto(console_url(acct, "/settings/password-policy"))
    page.get_by_label("Wrong passwords before a one-hour lockout").fill("3")
    shoot(page, f"password-policy-{_backend(acct)}")
    page.get_by_role("button", name="Save password policy").click()
    assert page.get_by_role("status").inner_text() == "Password policy saved."
    sign_out(page)

    for attempt in range(3):
        sign_in(page, acct, upn, f"Wrong-pass-{attempt}0")
        message = page.get_by_role("alert").inner_text()
    assert "locked" in message
    sign_in(page, acct, upn, INITIAL)  # the right password no longer helps
    assert "locked until" in page.get_by_role("alert").inner_text()
    shoot(page, f"signin-locked-{_backend(acct)}")
    failures = acct.events(EventName="ConsoleSignin", User=upn)
    assert [e["errorCode"] for e in failures] == ["LoginProfile.Locked"] + ["InvalidCredentials"] * 3
