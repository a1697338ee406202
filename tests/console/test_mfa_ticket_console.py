"""Saved MFA tickets (security preference EnableSaveMFATicket) over plain HTTP: the "remember this device"
checkbox of a RAM user's MFA step, the ticket cookie, later sign-ins without a code, and every way a ticket
stops working (preference off, device unbound and re-bound, user deleted, expiry, tampering, another user)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from alibabacloud_ims20190815 import models as m

from openims import maintenance
from openims.console.routes_signin import TICKET_COOKIE_PREFIX
from openims.crypto import token_hash
from openims.signin import mfa_tickets
from openims.store.tables.console import console_mfa_tickets, console_sessions
from tests.console.conftest import ROOT_PASSWORD, csrf_of, set_root_password
from tests.root_mfa_support import code, current_step, set_mfa
from tests.support import Account

PASSWORD = "Ticket-pass-8642"
REMEMBER = "Remember this MFA device in this browser for 7 days"
WEEK_S = 7 * 24 * 3600


@dataclass
class MfaUser:
    upn: str
    user_id: str
    serial: str
    seed: str
    # The last TOTP step the device accepted: the next code must be of a later one.
    last_step: int

    def next_code(self) -> str:
        self.last_step += 1
        return code(self.seed, self.last_step)


def _step_with_room() -> int:
    """The current TOTP step, at least 5 s before it ends, so a code of the step before is still current when
    the server checks it."""
    if time.time() % 30 > 25:
        time.sleep(30 - time.time() % 30 + 0.2)
    return current_step()


def _bind(acct: Account, user: MfaUser) -> None:
    """BindMFADevice with the two codes after the device's last accepted step (waiting until they are current)."""
    while current_step() < user.last_step + 1:
        time.sleep(1)
    first, second = user.next_code(), user.next_code()
    acct.ims().bind_mfadevice(
        m.BindMFADeviceRequest(
            user_principal_name=user.upn,
            serial_number=user.serial,
            authentication_code_1=first,
            authentication_code_2=second,
        )
    )


def _mfa_user(acct: Account, name: str) -> MfaUser:
    ims = acct.ims()
    upn = acct.upn(name)
    user_id = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name)).body.user.user_id
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD))
    device = ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name=name)).body
    user = MfaUser(
        upn,
        user_id,
        device.virtual_mfadevice.serial_number,
        device.virtual_mfadevice.base_32string_seed,
        _step_with_room() - 3,
    )
    _bind(acct, user)
    return user


def _save_tickets(acct: Account, on: bool) -> None:
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(enable_save_mfaticket=on))


def _browser(acct: Account) -> httpx.Client:
    return httpx.Client(base_url=acct.server.url, follow_redirects=False, timeout=30)


def _password_step(client: httpx.Client, login: str, password: str = PASSWORD) -> httpx.Response:
    """A sign-in after the browser was closed: its session cookie is gone, the ticket cookies (Max-Age) stay."""
    client.cookies.delete("openims_console")
    return client.post(
        "/console/signin",
        data={"login": login, "password": password, "csrf_token": csrf_of(client.get("/console/signin").text)},
    )


def _code_step(
    client: httpx.Client, value: str, remember: bool, headers: dict[str, str] | None = None
) -> httpx.Response:
    page = client.get("/console/signin/mfa")
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_of(page.text), "code": value, **({"remember": "on"} if remember else {})}
    return client.post("/console/signin/mfa", data=form, headers=headers)


def _asks_for_code(client: httpx.Client, login: str) -> bool:
    """Sign in with the right password: True at the MFA step, False straight into the console."""
    signed = _password_step(client, login)
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] in ("/console/signin/mfa", "/console/"), signed.headers["location"]
    return signed.headers["location"] == "/console/signin/mfa"


def _ticket_cookie(response: httpx.Response, user: MfaUser) -> str | None:
    """The Set-Cookie header of the user's ticket in this response, if any."""
    name = TICKET_COOKIE_PREFIX + user.user_id + "="
    return next((c for c in response.headers.get_list("set-cookie") if c.startswith(name)), None)


def _remembered(acct: Account, client: httpx.Client, user: MfaUser) -> str:
    """Sign in with a code, ticking the checkbox; returns the ticket token the browser now holds."""
    assert _asks_for_code(client, user.upn)
    done = _code_step(client, user.next_code(), remember=True)
    assert done.status_code == 303 and done.headers["location"] == "/console/", done.text
    assert _ticket_cookie(done, user)
    return client.cookies[TICKET_COOKIE_PREFIX + user.user_id]


def _signins(acct: Account, upn: str) -> list[dict]:
    return acct.events(EventName="ConsoleSignin", User=upn)


def _session_mfa(acct: Account, client: httpx.Client) -> bool:
    with acct.server.runtime.db.read() as conn:
        return bool(
            conn.execute(
                sa.select(console_sessions.c.mfa_authenticated).where(
                    console_sessions.c.token_hash == token_hash(client.cookies["openims_console"])
                )
            ).scalar_one()
        )


def test_a_remembered_device_skips_the_code_at_the_next_sign_in(acct: Account) -> None:
    _save_tickets(acct, True)
    user = _mfa_user(acct, "tina")
    client = _browser(acct)
    assert _asks_for_code(client, user.upn)
    page = client.get("/console/signin/mfa")
    assert REMEMBER in page.text and 'name="remember"' in page.text
    done = _code_step(client, user.next_code(), remember=True)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    cookie = _ticket_cookie(done, user)
    assert cookie is not None
    for attribute in ("HttpOnly", "Path=/console", "SameSite=lax", f"Max-Age={WEEK_S}"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP: a browser would drop a Secure cookie
    ticket = client.cookies[TICKET_COOKIE_PREFIX + user.user_id]
    # Only the ticket's hash is stored, bound to the user and to its device, for 7 days.
    with acct.server.runtime.db.read() as conn:
        row = conn.execute(sa.select(console_mfa_tickets).where(console_mfa_tickets.c.user_id == user.user_id)).one()
    assert row.token_hash == token_hash(ticket) and row.serial_number == user.serial
    assert row.expires_ms - row.created_ms == mfa_tickets.LIFETIME_MS
    coded = _signins(acct, user.upn)[0]
    assert coded["additionalEventData"]["MFAChecked"] == "true" and "MFATicket" not in coded["additionalEventData"]

    # A new sign-in in this browser: the right password alone opens an MFA-authenticated session.
    client.post("/console/signout", data={"csrf_token": csrf_of(client.get("/console/me").text)})
    assert not _asks_for_code(client, user.upn)
    assert _session_mfa(acct, client)
    event = _signins(acct, user.upn)[0]
    extra = event["additionalEventData"]
    assert "errorCode" not in event and extra["LoginResult"] == "success"
    assert (extra["MFAChecked"], extra["isMFAChecked"], extra["MFATicket"]) == ("true", "true", "true")
    assert event["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    me = client.get("/console/me")
    assert me.status_code == 200 and ticket not in me.text
    operation = acct.events(EventName="GetUserMFAInfo", User=user.upn)[0]
    assert operation["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    assert ticket not in json.dumps(acct.events())

    # The ticket replaces the code only: a wrong password is still refused, a required reset still applies.
    assert _password_step(client, user.upn, "Not-the-pass-1").status_code == 401
    acct.ims().update_login_profile(
        m.UpdateLoginProfileRequest(user_principal_name=user.upn, password_reset_required=True)
    )
    reset = _password_step(client, user.upn)
    assert reset.status_code == 303 and reset.headers["location"] == "/console/signin/change-password"

    # Over HTTPS (a trusted proxy says so) the ticket cookie is Secure, like the session cookie. Only the code
    # step goes "over HTTPS": this client would not send the earlier steps' Secure cookies back over HTTP.
    with acct.server.sibling(OPENIMS_TRUSTED_PROXIES="127.0.0.1") as behind_proxy:
        secure = httpx.Client(base_url=behind_proxy.url, follow_redirects=False, timeout=30)
        other = _mfa_user(acct, "tom")
        assert _asks_for_code(secure, other.upn)
        https_done = _code_step(secure, other.next_code(), remember=True, headers={"X-Forwarded-Proto": "https"})
    assert https_done.status_code == 303
    assert "Secure" in (_ticket_cookie(https_done, other) or "")


def test_without_the_preference_there_is_no_checkbox_and_tickets_are_ignored(acct: Account) -> None:
    user = _mfa_user(acct, "uma")
    client = _browser(acct)
    assert _asks_for_code(client, user.upn)
    assert REMEMBER not in client.get("/console/signin/mfa").text
    # A forged tick changes nothing while the preference is off.
    done = _code_step(client, user.next_code(), remember=True)
    assert done.status_code == 303 and _ticket_cookie(done, user) is None
    with acct.server.runtime.db.read() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(console_mfa_tickets)
                .where(console_mfa_tickets.c.account_id == acct.account_id)
            ).scalar_one()
            == 0
        )

    _save_tickets(acct, True)
    ticket = _remembered(acct, _browser(acct), user)
    browser = _browser(acct)
    browser.cookies.set(TICKET_COOKIE_PREFIX + user.user_id, ticket)
    assert not _asks_for_code(browser, user.upn)
    # Turned off: the ticket is ignored, the browser is told to drop it, and there is no checkbox.
    _save_tickets(acct, False)
    signed = _password_step(browser, user.upn)
    assert signed.headers["location"] == "/console/signin/mfa"
    assert any(
        c.startswith(TICKET_COOKIE_PREFIX + user.user_id + '=""') and "Max-Age=0" in c
        for c in signed.headers.get_list("set-cookie")
    )
    assert REMEMBER not in browser.get("/console/signin/mfa").text
    assert _signins(acct, user.upn)[0]["errorCode"] == "MFA.CodeRequired"
    # Turned on again, the old ticket stays dead.
    _save_tickets(acct, True)
    again = _browser(acct)
    again.cookies.set(TICKET_COOKIE_PREFIX + user.user_id, ticket)
    assert _asks_for_code(again, user.upn)


def test_a_ticket_dies_when_the_device_is_unbound_and_bound_again(acct: Account) -> None:
    _save_tickets(acct, True)
    user = _mfa_user(acct, "vera")
    client = _browser(acct)
    _remembered(acct, client, user)
    assert not _asks_for_code(client, user.upn)
    acct.ims().unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=user.upn))
    # Without a device there is no MFA: the sign-in says so, and does not claim the ticket.
    assert not _asks_for_code(client, user.upn)
    extra = _signins(acct, user.upn)[0]["additionalEventData"]
    assert extra["MFAChecked"] == "false" and "MFATicket" not in extra
    assert not _session_mfa(acct, client)
    # The same device bound again is a new binding: the ticket of the old one is worthless.
    _bind(acct, user)
    assert _asks_for_code(client, user.upn)
    assert _signins(acct, user.upn)[0]["errorCode"] == "MFA.CodeRequired"


def test_a_ticket_helps_only_its_own_user(acct: Account) -> None:
    _save_tickets(acct, True)
    alice, bob = _mfa_user(acct, "alice"), _mfa_user(acct, "bob")
    shared = _browser(acct)  # two users, one browser
    alice_ticket = _remembered(acct, shared, alice)
    assert _asks_for_code(shared, bob.upn)
    # Even under bob's cookie name, alice's ticket is alice's.
    forged = _browser(acct)
    forged.cookies.set(TICKET_COOKIE_PREFIX + bob.user_id, alice_ticket)
    assert _asks_for_code(forged, bob.upn)
    # Each keeps a ticket of their own in the shared browser.
    done = _code_step(shared, bob.next_code(), remember=True)
    assert done.status_code == 303 and _ticket_cookie(done, bob)
    assert not _asks_for_code(shared, alice.upn)
    assert not _asks_for_code(shared, bob.upn)
    # Deleting a user ends its tickets: restored from the recycle bin, bob must type a code again.
    ims = acct.ims()
    ims.delete_user(m.DeleteUserRequest(user_principal_name=bob.upn))
    ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=bob.user_id))
    assert _asks_for_code(shared, bob.upn)
    assert not _asks_for_code(shared, alice.upn)


def test_a_tampered_or_expired_ticket_asks_for_the_code(acct: Account) -> None:
    _save_tickets(acct, True)
    user = _mfa_user(acct, "wade")
    ticket = _remembered(acct, _browser(acct), user)
    name = TICKET_COOKIE_PREFIX + user.user_id

    def with_ticket(value: str) -> httpx.Client:
        client = _browser(acct)
        client.cookies.set(name, value)
        return client

    assert not _asks_for_code(with_ticket(ticket), user.upn)
    tampered = ticket[:-1] + ("A" if ticket[-1] != "A" else "B")
    assert _asks_for_code(with_ticket(tampered), user.upn)
    assert _asks_for_code(with_ticket(token_hash(ticket)), user.upn)  # what the database holds opens nothing
    # White-box: seven days have passed (the row's expiry is now), instead of waiting a week.
    with acct.server.runtime.db.transaction() as conn:
        conn.execute(
            sa.update(console_mfa_tickets)
            .where(console_mfa_tickets.c.token_hash == token_hash(ticket))
            .values(expires_ms=int(time.time() * 1000))
        )
    assert _asks_for_code(with_ticket(ticket), user.upn)
    assert maintenance.purge(acct.server.runtime)["console_mfa_tickets"] >= 1
    with acct.server.runtime.db.read() as conn:
        assert (
            conn.execute(sa.select(console_mfa_tickets).where(console_mfa_tickets.c.user_id == user.user_id)).first()
            is None
        )


def test_root_mfa_is_asked_for_at_every_sign_in(acct: Account) -> None:
    _save_tickets(acct, True)
    set_root_password(acct)
    bound = set_mfa(acct.server, acct.alias)
    assert bound.returncode == 0 and bound.seed and bound.step, bound.stderr
    client = _browser(acct)
    signed = _password_step(client, acct.alias, ROOT_PASSWORD)
    assert signed.headers["location"] == "/console/signin/mfa"
    assert REMEMBER not in client.get("/console/signin/mfa").text
    done = _code_step(client, code(bound.seed, bound.step + 1), remember=True)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert not any(c.startswith(TICKET_COOKIE_PREFIX) for c in done.headers.get_list("set-cookie"))
    again = _password_step(client, acct.alias, ROOT_PASSWORD)
    assert again.headers["location"] == "/console/signin/mfa"
