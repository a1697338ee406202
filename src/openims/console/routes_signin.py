"""Sign-in, its further steps (MFA code, binding an MFA device, a required password change) and sign-out.

The root identity signs in with the account alias or ID and the account password (then an MFA code when
`openims account set-mfa` gave it MFA, checked by `root_signin`); a RAM user with its
UserPrincipalName (or `name@alias`) and password, checked by `openims.signin.ram_user`, which applies the lockout,
expiry, forced reset, MFA, network masks and session duration, and records each attempt's ConsoleSignin
event. Steps after the password run in a session that may do nothing else until they are done.

With the security preference EnableSaveMFATicket, a RAM user's MFA step offers to remember the device: the
browser then keeps a saved MFA ticket (`openims.signin.mfa_tickets`) in a cookie named after the user, so users
sharing a browser keep one each, and presents them all at the password step.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from openims.accounts import DOMAIN_SUFFIX
from openims.actions.security_preference import load_preferences
from openims.console import csrf, sessions
from openims.console.sessions import Session
from openims.console.web import ALL_STAGES, PREFIX, STAGE_PAGES, Page, endpoint, local_path, url
from openims.errors import ApiError
from openims.params import has_control
from openims.signin import mfa_tickets, ram_user, root_account
from openims.store.tables.apps_domains import domains


def _resolve(page: Page, login: str) -> tuple[str, str] | None:
    """(account alias or ID, login name) of a RAM user's login name, or None for a root login."""
    if "@" not in login:
        return None
    name, _, domain = login.rpartition("@")
    domain = domain.lower()
    with page.rt.db.read() as conn:
        # A name with a control character names no domain (and PostgreSQL could not even look it up).
        owner = None
        if not has_control(domain):
            owner = conn.execute(
                select(domains.c.account_id).where(domains.c.name == domain, domains.c.status == "Verified")
            ).scalar()
    if owner:
        return owner, login
    if domain.endswith(DOMAIN_SUFFIX):
        return domain[: -len(DOMAIN_SUFFIX)], login
    # The short form `name@alias`.
    return domain, name


TICKET_COOKIE_PREFIX = "openims_mfa_"


def ticket_cookie(user_id: str) -> str:
    return TICKET_COOKIE_PREFIX + user_id


def _presented_tickets(page: Page) -> list[str]:
    return [value for name, value in page.request.cookies.items() if name.startswith(TICKET_COOKIE_PREFIX)]


def _stages(result: ram_user.SigninResult) -> list[str]:
    stages = []
    if result.mfa_bind_required:
        stages.append(sessions.BIND_MFA)
    if result.password_change_required:
        stages.append(sessions.CHANGE_PASSWORD)
    return stages


def _lifetime_ms(page: Page, session: Session) -> int:
    """The full session's lifetime: the account's LoginSessionDuration for RAM users."""
    if session.is_root:
        return root_account.ROOT_SESSION_S * 1000
    with page.rt.db.read() as conn:
        return load_preferences(conn, session.account_id).login_session_duration * 3600 * 1000


def start_session(page: Page, token: str, target: str) -> RedirectResponse:
    """Replace any session this browser had by the new one and go on."""
    if page.session is not None:
        sessions.destroy(page.rt, page.session)
    page.set_cookie(sessions.COOKIE, token)
    return RedirectResponse(target, status_code=303)


def _signin_form(
    page: Page,
    status: int = 200,
    error: str | None = None,
    login: str = "",
    notice: str | None = None,
    sso_account: str = "",
) -> Response:
    pre = page.request.cookies.get(csrf.PRE_COOKIE) or ""
    if not pre or len(pre) > 64:
        pre = csrf.new_presession()
        page.set_cookie(csrf.PRE_COOKIE, pre)
    return page.render(
        "signin.html",
        status=status,
        title="Sign in",
        signin_token=csrf.presession_token(page.rt, pre),
        error=error,
        login=login,
        next=local_path(page.q("next") or page.f("next")),
        notice=notice,
        sso_account=sso_account,
    )


@endpoint(stages=None)
def signin_page(page: Page) -> Response:
    """The sign-in form (a signed-in browser goes straight to the console)."""
    if page.session is not None and page.session.stage == sessions.ACTIVE:
        return RedirectResponse(local_path(page.q("next")), status_code=303)
    notice = (
        "You have signed out."
        if page.q("signed_out")
        else "Your console session had ended, so the form you sent was not saved. Sign in, then send it again."
        if page.q("ended")
        else None
    )
    return _signin_form(page, notice=notice)


@endpoint(stages=None)
def signin_submit(page: Page) -> Response:
    login, password = page.f("login"), page.form.get("password", "")
    target = local_path(page.f("next"))
    if not login or not password:
        return _signin_form(page, 400, "Enter your login name and password.", login)
    resolved = _resolve(page, login)
    if resolved is None:
        result = root_account.authenticate_root(page.rt, login, password, page.source_ip, page.user_agent, page.scheme)
    else:
        account, name = resolved
        result = ram_user.authenticate_password(
            page.rt,
            account,
            name,
            password,
            None,
            page.source_ip,
            page.user_agent,
            scheme=page.scheme,
            mfa_tickets_presented=_presented_tickets(page),
        )
    if result.success:
        return _open(page, result, target)
    if result.mfa_required and result.error_code == ram_user.MFA_REQUIRED:
        # The root identity's MFA step is the RAM user's: a session at the MFA stage, user_id None for root.
        assert result.account_id
        if result.user_id and ticket_cookie(result.user_id) in page.request.cookies:
            page.clear_cookies.append(ticket_cookie(result.user_id))  # it did not stand in for the code: it is dead
        with page.rt.db.transaction() as conn:
            token = sessions.create(
                conn,
                page.rt,
                account_id=result.account_id,
                user_id=result.user_id,
                user_name=result.user_principal_name or "root",
                stages=[sessions.MFA],
                mfa_authenticated=False,
                lifetime_ms=sessions.MFA_STEP_MS,
                source_ip=page.source_ip,
                user_agent=page.user_agent,
                pending_password=password,
            )
        return start_session(page, token, url("/signin/mfa", next=target if target != PREFIX + "/" else None))
    if result.error_code == ram_user.SSO_REQUIRED and resolved is not None:
        # As in Alibaba Cloud: the account's RAM users go to its identity provider; the form below offers it.
        return _signin_form(page, 401, result.error_message, login, sso_account=resolved[0])
    return _signin_form(page, 401, result.error_message, login)


def _open(page: Page, result: ram_user.SigninResult, target: str) -> RedirectResponse:
    """A new session for a successful sign-in (root: no user ID, no further steps), at its first required step."""
    assert result.account_id
    if result.user_id is None:
        with page.rt.db.transaction() as conn:
            token = sessions.create(
                conn,
                page.rt,
                account_id=result.account_id,
                user_id=None,
                user_name="root",
                stages=[],
                mfa_authenticated=result.mfa_checked,
                lifetime_ms=result.session_duration_s * 1000,
                source_ip=page.source_ip,
                user_agent=page.user_agent,
            )
        return start_session(page, token, target)
    assert result.user_principal_name
    if result.mfa_ticket:
        page.set_cookie(ticket_cookie(result.user_id), result.mfa_ticket, max_age=mfa_tickets.LIFETIME_MS // 1000)
    stages = _stages(result)
    with page.rt.db.transaction() as conn:
        token = sessions.create(
            conn,
            page.rt,
            account_id=result.account_id,
            user_id=result.user_id,
            user_name=result.user_principal_name,
            stages=stages,
            mfa_authenticated=result.mfa_checked,
            lifetime_ms=result.session_duration_s * 1000,
            source_ip=page.source_ip,
            user_agent=page.user_agent,
        )
    return start_session(page, token, PREFIX + STAGE_PAGES[stages[0]] if stages else target)


def _mfa_form(page: Page, next_path: str, status: int = 200, error: str | None = None) -> Response:
    """The code step; a RAM user of an account with EnableSaveMFATicket may also ask to remember the device."""
    assert page.session is not None
    may_remember = False
    if not page.session.is_root:
        with page.rt.db.read() as conn:
            may_remember = load_preferences(conn, page.session.account_id).enable_save_mfa_ticket
    return page.render(
        "signin_mfa.html",
        status=status,
        title="MFA code",
        error=error,
        next=next_path,
        may_remember=may_remember,
        remember=page.form.get("remember") == "on",
        remember_days=mfa_tickets.LIFETIME_DAYS,
    )


@endpoint(stages=(sessions.MFA,))
def mfa_page(page: Page) -> Response:
    return _mfa_form(page, local_path(page.q("next")))


@endpoint(stages=(sessions.MFA,))
def mfa_submit(page: Page) -> Response:
    assert page.session is not None
    code = re.sub(r"\s", "", page.f("code"))
    password = sessions.pending_password(page.rt, page.session)
    if password is None:
        sessions.destroy(page.rt, page.session)
        page.clear_cookies.append(sessions.COOKIE)
        page.session = None
        return _signin_form(page, 401, "The sign-in took too long. Sign in again.")
    account_ref = page.session.account_id
    if page.session.is_root:
        result = root_account.authenticate_root(
            page.rt, account_ref, password, page.source_ip, page.user_agent, page.scheme, mfa_code=code
        )
    else:
        result = ram_user.authenticate_password(
            page.rt,
            account_ref,
            page.session.user_name,
            password,
            code,
            page.source_ip,
            page.user_agent,
            scheme=page.scheme,
            save_mfa_ticket=page.form.get("remember") == "on",
        )
    if result.success:
        return _open(page, result, local_path(page.f("next")))
    if result.error_code in (ram_user.MFA_INVALID, ram_user.MFA_REUSED, ram_user.MFA_REQUIRED):
        return _mfa_form(page, local_path(page.f("next")), 401, result.error_message)
    sessions.destroy(page.rt, page.session)
    page.clear_cookies.append(sessions.COOKIE)
    page.session = None
    return _signin_form(page, 401, result.error_message)


def _device_name(session: Session) -> str:
    base = re.sub(r"[^A-Za-z0-9-]", "-", session.user_name.partition("@")[0]).strip("-")[:48] or "user"
    return f"{base}-{secrets.token_hex(3)}"


@endpoint(stages=(sessions.BIND_MFA,))
def bind_page(page: Page) -> Response:
    """The binding form; right after a device was created, also its seed and QR code, that once."""
    assert page.session is not None
    device = sessions.take_reveal(page.rt, page.session, "mfa-device")
    return page.render(
        "signin_bind_mfa.html", title="Set up MFA", device=device, pending=bool(page.session.pending_serial)
    )


@endpoint(stages=(sessions.BIND_MFA,))
def bind_new(page: Page) -> Response:
    """Create the virtual MFA device to bind, then show it on the binding page (post/redirect/get: a reload
    cannot create another device)."""
    assert page.session is not None
    created = page.call("CreateVirtualMFADevice", {"VirtualMFADeviceName": _device_name(page.session)})
    device = created["VirtualMFADevice"]
    sessions.update_session(page.rt, page.session, pending_serial=device["SerialNumber"])
    sessions.hold_reveal(page.rt, page.session, "mfa-device", device)
    return page.redirect("/signin/bind-mfa")


@endpoint(stages=(sessions.BIND_MFA,))
def bind_submit(page: Page) -> Response:
    session = page.session
    assert session is not None
    if not session.pending_serial:
        return page.redirect("/signin/bind-mfa")
    try:
        page.call(
            "BindMFADevice",
            {
                "UserPrincipalName": session.user_name,
                "SerialNumber": session.pending_serial,
                "AuthenticationCode1": page.f("code1"),
                "AuthenticationCode2": page.f("code2"),
            },
        )
    except ApiError as err:
        return page.render(
            "signin_bind_mfa.html", title="Set up MFA", status=err.status, device=None, pending=True, error=err.message
        )
    token = sessions.advance(
        page.rt, session, _lifetime_ms(page, session), page.source_ip, page.user_agent, mfa_authenticated=True
    )
    return _continue(page, token, "Your MFA device is bound: sign-in will ask for its code from now on.")


def _continue(page: Page, token: str, message: str) -> RedirectResponse:
    """Go on to the next required step, or into the console, under the new session token."""
    page.set_cookie(sessions.COOKIE, token)
    fresh = sessions.load(page.rt, token)
    if fresh is not None:
        sessions.set_flash(page.rt, fresh, message)
    stage = fresh.stage if fresh else sessions.ACTIVE
    return RedirectResponse(PREFIX + (STAGE_PAGES[stage] if stage != sessions.ACTIVE else "/"), status_code=303)


@endpoint(stages=(sessions.CHANGE_PASSWORD,))
def change_page(page: Page) -> Response:
    return page.render("change_password.html", title="Change password", forced=True)


@endpoint(stages=(sessions.CHANGE_PASSWORD,))
def change_submit(page: Page) -> Response:
    session = page.session
    assert session is not None
    error = change_password(page)
    if error is not None:
        return page.render(
            "change_password.html", title="Change password", status=error.status, forced=True, error=error.message
        )
    token = sessions.advance(page.rt, session, _lifetime_ms(page, session), page.source_ip, page.user_agent)
    return _continue(page, token, "Your password has been changed.")


def change_password(page: Page) -> ApiError | None:
    """ChangePassword from the form (shared by the required step and the account page)."""
    new = page.form.get("new_password", "")
    if new != page.form.get("confirm_password", ""):
        return ApiError("InvalidParameter.NewPassword.Mismatch", "The new password and its confirmation differ.")
    try:
        page.call("ChangePassword", {"OldPassword": page.form.get("old_password", ""), "NewPassword": new})
    except ApiError as err:
        return err
    return None


@endpoint(stages=ALL_STAGES)
def signout(page: Page) -> Response:
    if page.session is not None:
        sessions.destroy(page.rt, page.session)
    page.clear_cookies.append(sessions.COOKIE)
    return RedirectResponse(url("/signin", signed_out="1"), status_code=303)


routes = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin_submit, methods=["POST"]),
    Route("/signin/mfa", mfa_page, methods=["GET"]),
    Route("/signin/mfa", mfa_submit, methods=["POST"]),
    Route("/signin/bind-mfa", bind_page, methods=["GET"]),
    Route("/signin/bind-mfa/new", bind_new, methods=["POST"]),
    Route("/signin/bind-mfa", bind_submit, methods=["POST"]),
    Route("/signin/change-password", change_page, methods=["GET"]),
    Route("/signin/change-password", change_submit, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
]
