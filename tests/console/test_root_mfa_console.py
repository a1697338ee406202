"""Root console sign-in with MFA (`openims account set-mfa`), over plain HTTP: the code step after the password,
replay refused, wrong codes locking like wrong passwords, and the ConsoleSignin events."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from openims.audit.event import mfa_used
from openims.console.sessions import token_hash
from openims.signin import lockout
from openims.store.tables.console import console_sessions
from tests.console.conftest import ROOT_PASSWORD, csrf_of, set_root_password
from tests.root_mfa_support import code, set_mfa, unset_mfa, wrong_code
from tests.support import Account


def _password_step(acct: Account, login: str | None = None) -> tuple[httpx.Client, str]:
    """Sign in with the root password; returns the client at the MFA step and that page's CSRF token."""
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False, timeout=30)
    signed = client.post(
        "/console/signin",
        data={
            "login": login or acct.alias,
            "password": ROOT_PASSWORD,
            "csrf_token": csrf_of(client.get("/console/signin").text),
        },
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/console/signin/mfa", signed.text
    page = client.get("/console/signin/mfa")
    assert page.status_code == 200 and "MFA code" in page.text and "root" in page.text
    return client, csrf_of(page.text)


def _submit(client: httpx.Client, token: str, value: str) -> httpx.Response:
    return client.post("/console/signin/mfa", data={"csrf_token": token, "code": value})


def _signin_events(acct: Account) -> list[dict]:
    return acct.events(EventName="ConsoleSignin")


def test_root_with_mfa_signs_in_with_a_fresh_code_only(acct: Account) -> None:
    set_root_password(acct)
    bound = set_mfa(acct.server, acct.alias)
    assert bound.returncode == 0 and bound.seed and bound.step, bound.stderr
    seed, step = bound.seed, bound.step

    client, token = _password_step(acct)
    # The half-signed-in session can do nothing but the code step.
    assert client.get("/console/users").headers["location"] == "/console/signin/mfa"
    required = _signin_events(acct)[0]
    assert required["errorCode"] == "MFA.CodeRequired"
    assert required["additionalEventData"]["LoginResult"] == "MFARequired"
    assert required["additionalEventData"]["MFAChecked"] == "false"

    wrong = _submit(client, token, wrong_code(seed, step))
    assert wrong.status_code == 401 and "The MFA code is incorrect." in wrong.text
    assert _signin_events(acct)[0]["errorCode"] == "MFA.InvalidCode"
    # The second binding code was accepted once already: it never signs in.
    replayed = _submit(client, token, code(seed, step))
    assert replayed.status_code == 401 and "already used" in replayed.text
    assert _signin_events(acct)[0]["errorCode"] == "MFA.CodeReused"

    fresh = code(seed, step + 1)
    done = _submit(client, token, fresh)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert client.get("/console/").status_code == 200
    signin = _signin_events(acct)[0]
    assert "errorCode" not in signin and signin["eventType"] == "ConsoleSignin"
    extra = signin["additionalEventData"]
    assert (extra["LoginResult"], extra["MFAChecked"], extra["isMFAChecked"]) == ("success", "true", "true")
    # Both steps name the account the same way (the password step got the alias, the code step the ID).
    assert {e["additionalEventData"]["loginAccount"] for e in _signin_events(acct)} == {acct.alias}
    identity = signin["userIdentity"]
    assert identity["type"] == "root-account" and identity["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    # The session is MFA-authenticated: so are its console operations.
    with acct.server.runtime.db.read() as conn:
        stored = conn.execute(
            sa.select(console_sessions.c.mfa_authenticated).where(
                console_sessions.c.token_hash == token_hash(client.cookies["openims_console"])
            )
        ).scalar()
    assert stored is True
    assert client.get("/console/events", params={"range": "1h"}).status_code == 200
    viewed = acct.events(EventName="LookupEvents", User="root")[0]
    assert viewed["eventType"] == "ConsoleOperation"
    assert viewed["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    used = client.get("/console/events", params={"range": "1h", "EventName": "ConsoleSignin", "MFAUsed": "true"})
    assert used.text.count("ConsoleSignin</a>") == 1
    # LookupEvents' MFAUsed is exact: the same events as reading each record, from an indexed column.
    everything = acct.events()
    assert acct.events(MFAUsed="true") == [e for e in everything if mfa_used(e)]
    assert [e["eventName"] for e in acct.events(MFAUsed="true", EventName="ConsoleSignin")] == ["ConsoleSignin"]
    assert [e.get("errorCode") for e in acct.events(MFAUsed="false", EventName="ConsoleSignin")] == [
        "MFA.CodeReused",
        "MFA.InvalidCode",
        "MFA.CodeRequired",
    ]

    # A code used once is refused in another sign-in too (by the account ID this time).
    other, other_token = _password_step(acct, acct.account_id)
    again = _submit(other, other_token, fresh)
    assert again.status_code == 401 and "already used" in again.text

    # Without root MFA, the password alone signs in again.
    assert unset_mfa(acct.server, acct.alias).returncode == 0
    plain = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    opened = plain.post(
        "/console/signin",
        data={"login": acct.alias, "password": ROOT_PASSWORD, "csrf_token": csrf_of(plain.get("/console/signin").text)},
    )
    assert opened.status_code == 303 and opened.headers["location"] == "/console/"
    assert _signin_events(acct)[0]["additionalEventData"]["MFAChecked"] == "false"


def test_wrong_root_mfa_codes_lock_sign_in_like_wrong_passwords(acct: Account) -> None:
    set_root_password(acct)
    bound = set_mfa(acct.server, acct.alias)
    assert bound.returncode == 0 and bound.seed and bound.step, bound.stderr
    seed, step = bound.seed, bound.step
    # One wrong password and MAX_ATTEMPTS - 1 wrong codes: one count, and the last of them locks.
    probe = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    bad = probe.post(
        "/console/signin",
        data={
            "login": acct.alias,
            "password": "not-the-password",
            "csrf_token": csrf_of(probe.get("/console/signin").text),
        },
    )
    assert bad.status_code == 401
    client, token = _password_step(acct)
    for attempt in range(lockout.ROOT_MAX_ATTEMPTS - 1):
        refused = _submit(client, token, wrong_code(seed, step))
        assert refused.status_code == 401
        assert ("locked for" in refused.text) == (attempt == lockout.ROOT_MAX_ATTEMPTS - 2)
    # Locked: even the right code now ends the step, back at the sign-in form.
    locked = _submit(client, token, code(seed, step + 1))
    assert locked.status_code == 401 and "locked until" in locked.text
    assert _signin_events(acct)[0]["errorCode"] == "LoginProfile.Locked"
    fresh = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    still = fresh.post(
        "/console/signin",
        data={"login": acct.alias, "password": ROOT_PASSWORD, "csrf_token": csrf_of(fresh.get("/console/signin").text)},
    )
    assert still.status_code == 401 and "locked until" in still.text
    # The operator's way out is the same: setting the password again lifts the lockout.
    set_root_password(acct)
    client, token = _password_step(acct)
    assert _submit(client, token, code(seed, step + 1)).status_code == 303
