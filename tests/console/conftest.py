"""Console test fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), a root
console password set with the CLI as an operator would, and sign-in helpers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Account

CHROMIUM = os.environ.get("OPENIMS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ROOT_PASSWORD = "Root-console-pass-1"


def _unavailable(why: str) -> None:
    """Under CI the console tests must run: a missing browser is a failure there, a skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"console tests cannot run: {why} (install Debian's chromium and the playwright package)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: Playwright's sync API keeps an asyncio loop running in this thread while it is open, and
    a later test's own `asyncio.run` on the same xdist worker would then fail."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} not found")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    if call.when == "call":
        item.failed_call = outcome.get_result().failed  # type: ignore[attr-defined]


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        if getattr(request.node, "failed_call", False):  # what the browser showed when the test failed
            shoot(tab, "FAILED-" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name))
        context.close()


def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot for people to look at (test-artifacts/ is not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def set_root_password(acct: Account, password: str = ROOT_PASSWORD) -> None:
    """`openims account set-password`, reading the password from stdin."""
    server = acct.server
    command = [
        sys.executable,
        "-m",
        "openims",
        "--data-dir",
        str(server.data_dir),
        "account",
        "set-password",
        "--account",
        acct.account_id,
    ]
    out = subprocess.run(
        command, input=password + "\n", capture_output=True, text=True, env=server.env, timeout=180, check=False
    )
    assert out.returncode == 0, out.stderr
    assert acct.account_id in out.stdout


def console_url(acct: Account, path: str = "/") -> str:
    return f"{acct.server.url}/console{path}"


def sign_in(page, acct: Account, login: str, password: str):  # type: ignore[no-untyped-def]
    page.goto(console_url(acct, "/signin"))
    page.get_by_label("Login name").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/signin.*"))


def http_session(acct: Account, login: str, password: str) -> httpx.Client:
    """A plain HTTP client signed in to the console (for requests a browser would not send)."""
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False, timeout=30)
    form = client.get("/console/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    done = client.post("/console/signin", data={"login": login, "password": password, "csrf_token": token.group(1)})
    assert done.status_code == 303, done.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)
