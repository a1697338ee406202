"""The Alerts page in a real browser: root switches on a preset, sees its alert (with its delivery status) after
the triggering sign-in, tests and switches off the rule, and the overview shows today's alerts. Every change is
an audited event, as from the API."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.console.conftest import ROOT_PASSWORD, set_root_password, shoot, sign_in
from tests.support import Account


def _wait_for_text(page, text: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Reload until `text` shows (delivery runs in the background)."""
    deadline = time.monotonic() + timeout
    while text not in page.locator("main").inner_text():
        assert time.monotonic() < deadline, f"{text!r} never showed"
        time.sleep(0.5)
        page.reload()


def test_root_switches_on_a_preset_and_sees_its_alert(page, browser, acct: Account) -> None:  # type: ignore[no-untyped-def]
    set_root_password(acct)
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    assert "No alert rules yet" in page.locator("main").inner_text()

    # A rule that cannot be right comes back with the reason and the form as it was filled in.
    page.get_by_label("Rule name").fill("root-in")
    page.get_by_label("Preset").select_option("RootSignin")
    page.get_by_role("button", name="Create rule").click()
    assert "at least one destination" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Rule name").input_value() == "root-in"
    # Syslog to a port where nothing listens (and loopback, which egress refuses): the alert waits, retried.
    page.get_by_label("Syslog address (host:port)").fill("127.0.0.1:9")
    page.get_by_role("button", name="Create rule").click()
    assert page.get_by_role("status").inner_text() == "Alert rule root-in created."
    row = page.locator("tr", has_text="root-in")
    assert "preset RootSignin" in row.inner_text() and "Syslog" in row.inner_text()

    # Root signs in again, from another browser: the rule fires.
    other = browser.new_context()
    try:
        sign_in(other.new_page(), acct, acct.alias, ROOT_PASSWORD)
    finally:
        other.close()
    _wait_for_text(page, "ConsoleSignin by root from 127.0.0.1")
    latest = page.locator("section", has=page.get_by_role("heading", name="Latest alerts"))
    assert re.search(r"Retrying|Pending", latest.inner_text())
    shoot(page, f"alerts-{acct.server.backend}")

    page.get_by_role("button", name="Test root-in").click()
    assert "A test alert of root-in is on its way" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Switch off root-in").click()
    assert "switched off" in page.get_by_role("status").inner_text()
    expect(page.locator("tr", has_text="root-in").get_by_text("off", exact=True)).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    today = page.locator("section", has=page.get_by_role("heading", name="Today's alerts"))
    assert "1 alert today" in today.inner_text()  # the test alert is not counted
    assert "The root identity signed in to the console" in today.inner_text()
    shoot(page, f"overview-alerts-{acct.server.backend}")

    # The refused creation is on the record too.
    created = acct.events(EventName="CreateAlertRule")
    assert [e.get("errorCode") for e in created] == [None, "InvalidParameterCombination"]
    for name in ("CreateAlertRule", "TestAlertRule", "UpdateAlertRule"):
        assert acct.events(EventName=name)[0]["eventType"] == "ConsoleOperation", name
