"""SAML user SSO into the console (user-based SSO, as Alibaba Cloud's): the account's identity provider signs
RAM users in, configured with SetUserSsoSettings / SetSamlSsoSettings.

- SP-initiated: `start` builds an AuthnRequest for the IdP's SingleSignOnService and remembers its ID
  (saml_authn_requests, ten minutes, answered once).
- Both flows end at `sign_in`, given the POSTed SAMLResponse: saml_response.verify checks the signature,
  issuer, audience, recipient and time window; here the Assertion ID is marked used (a unique key, so a
  replay fails in any server process), InResponseTo must name a request this account sent and has not seen
  answered, and the NameID must name a RAM user of the account (`user@<default domain, domain alias or
  auxiliary domain>`, or the bare `user` when SsoLoginWithDomain is off), enabled, with console logon enabled,
  signing in from an allowed network (LoginNetworkMasks).

Every outcome, success or refusal, is one ConsoleSignin event (loginType `saml`) with the refusal's code and
reason, committed with what the sign-in changed.
"""

from __future__ import annotations

import base64
import logging
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from lxml import etree
from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openims import accounts, clock
from openims.actions.security_preference import load_preferences
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.federation import saml_metadata, saml_response
from openims.federation.saml_metadata import IdpMetadata, MetadataError
from openims.federation.sp_metadata import HTTP_POST, PROTOCOL, ServiceProvider, service_provider
from openims.params import has_control
from openims.principal import RAM_USER, Principal
from openims.runtime import Runtime
from openims.store.schema import accounts as accounts_table
from openims.store.schema import users
from openims.store.tables.credentials import login_profiles
from openims.store.tables.federation import user_sso_settings
from openims.store.tables.saml_sso import saml_assertions_used, saml_authn_requests

log = logging.getLogger("openims.federation.saml_sso")

ASSERTION = saml_response.ASSERTION
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
REQUEST_LIFETIME_MS = 10 * 60 * 1000
USER = "ACS::RAM::User"

# Refusal codes beyond saml_response's (the ConsoleSignin event's errorCode).
SSO_DISABLED = "Saml.SsoDisabled"
UNKNOWN_REQUEST = "Saml.UnknownRequest"
REPLAYED = "Saml.Replayed"
UNKNOWN_USER = "Saml.UnknownUser"
USER_DISABLED = "User.Inactive"
LOGIN_DISABLED = "LoginProfile.Inactive"
NETWORK_DENIED = "LoginNetworkDenied"


@dataclass(frozen=True)
class AccountSso:
    """An account's user SSO settings, with its IdP metadata parsed."""

    account_id: str
    enabled: bool
    login_with_domain: bool
    auxiliary_domain: str
    idp: IdpMetadata | None

    @property
    def usable(self) -> bool:
        return self.enabled and self.idp is not None


def load(conn: Connection, account_id: str) -> AccountSso | None:
    """The account's SSO settings, or None when it never set any."""
    row = conn.execute(select(user_sso_settings).where(user_sso_settings.c.account_id == account_id)).first()
    if row is None:
        return None
    idp = None
    if row.metadata_document:
        try:
            idp = saml_metadata.parse_encoded(row.metadata_document)
        except MetadataError:  # validated when set; a stored document that no longer parses signs no one in
            log.warning("account %s: stored IdP metadata does not parse", account_id)
    return AccountSso(account_id, row.sso_enabled, row.sso_login_with_domain, row.auxiliary_domain, idp)


def find_account(rt: Runtime, ref: str) -> str | None:
    """The ID of the account named by its ID or alias."""
    ref = ref.strip().lower()
    if not ref or len(ref) > 64 or has_control(ref):
        return None
    with rt.db.read() as conn:
        found: str | None = conn.execute(
            select(accounts_table.c.id).where(or_(accounts_table.c.id == ref, accounts_table.c.alias == ref))
        ).scalar()
    return found


@dataclass(frozen=True)
class Outbound:
    """Where to send the browser with the AuthnRequest: a redirect (HTTP-Redirect binding) or a form to post."""

    binding: str
    url: str
    saml_request: str  # Base64 (of the DEFLATEd XML for the Redirect binding)

    def redirect_url(self) -> str:
        separator = "&" if "?" in self.url else "?"
        return self.url + separator + urlencode({"SAMLRequest": self.saml_request})


def start(rt: Runtime, account_id: str, next_path: str) -> Outbound | None:
    """Begin an SP-initiated sign-in: store a request ID and build the AuthnRequest (None: SSO is not on)."""
    with rt.db.read() as conn:
        sso = load(conn, account_id)
    if sso is None or not sso.usable:
        return None
    assert sso.idp is not None
    sp = service_provider(rt.settings, account_id)
    redirect = sso.idp.sso_location(HTTP_REDIRECT)
    post = sso.idp.sso_location(HTTP_POST)
    destination = redirect or post
    if destination is None:
        return None
    request_id = "_" + secrets.token_hex(20)
    now = clock.now_ms()
    xml = _authn_request(request_id, sp, destination, now)
    with rt.db.transaction() as conn:
        conn.execute(
            insert(saml_authn_requests).values(
                request_id=request_id,
                account_id=account_id,
                next_path=next_path[:512],
                created_ms=now,
                expires_ms=now + REQUEST_LIFETIME_MS,
            )
        )
    if redirect is not None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw DEFLATE, as the binding says
        deflated = compressor.compress(xml) + compressor.flush()
        return Outbound(HTTP_REDIRECT, redirect, base64.b64encode(deflated).decode("ascii"))
    return Outbound(HTTP_POST, destination, base64.b64encode(xml).decode("ascii"))


def _authn_request(request_id: str, sp: ServiceProvider, destination: str, now_ms: int) -> bytes:
    instant = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = etree.Element(
        f"{{{PROTOCOL}}}AuthnRequest",
        {
            "ID": request_id,
            "Version": "2.0",
            "IssueInstant": instant,
            "Destination": destination,
            "AssertionConsumerServiceURL": sp.acs_url,
            "ProtocolBinding": HTTP_POST,
        },
        nsmap={"samlp": PROTOCOL, "saml": ASSERTION},
    )
    etree.SubElement(request, f"{{{ASSERTION}}}Issuer").text = sp.entity_id
    etree.SubElement(
        request,
        f"{{{PROTOCOL}}}NameIDPolicy",
        {"Format": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified", "AllowCreate": "false"},
    )
    return bytes(etree.tostring(request, xml_declaration=True, encoding="utf-8"))


@dataclass(frozen=True)
class SsoResult:
    """The outcome of one SAML sign-in."""

    success: bool
    account_id: str
    user_id: str | None = None
    user_principal_name: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # The console path to open: the SP-initiated request's, else none (the caller uses RelayState or home).
    next_path: str | None = None
    # The console session's lifetime: LoginSessionDuration, cut to the IdP's SessionNotOnOrAfter.
    session_ms: int = 0
    event_id: str | None = None


class _Refused(saml_response.Refusal):
    """A refusal from the account's settings or database, naming the user when one was found."""

    def __init__(self, code: str, message: str, user: Row[Any] | None = None) -> None:
        super().__init__(code, message)
        self.user = user


def sign_in(rt: Runtime, account_id: str, saml_response_b64: str, origin: Origin) -> SsoResult:
    """Verify a POSTed SAMLResponse for the account and record the ConsoleSignin event (success or refusal)."""
    now = clock.now_ms()
    sso_entity = ""
    verified: saml_response.Verified | None = None
    try:
        with rt.db.read() as conn:
            sso = load(conn, account_id)
        if sso is None or not sso.usable:
            raise _Refused(SSO_DISABLED, "SAML single sign-on is not enabled for this account.")
        assert sso.idp is not None
        sso_entity = sso.idp.entity_id
        sp = service_provider(rt.settings, account_id)
        expected = saml_response.Expected(sso.idp.entity_id, sso.idp.signing_certificates, sp.entity_id, sp.acs_url)
        verified = saml_response.verify(saml_response.decode(saml_response_b64), expected, now)
        with rt.db.transaction() as conn:
            rt.db.serialize_account(conn, account_id)
            try:
                return _accept(rt, conn, sso, verified, origin, now)
            except _Refused as refused:
                # What the checks wrote (a consumed request) stays, with the refusal's event.
                return _record(rt, conn, account_id, origin, now, sso_entity, verified, refused)
    except saml_response.Refusal as refused:  # the settings, or the Response itself
        with rt.db.transaction() as conn:
            return _record(rt, conn, account_id, origin, now, sso_entity, verified, refused)


def _accept(
    rt: Runtime, conn: Connection, sso: AccountSso, verified: saml_response.Verified, origin: Origin, now: int
) -> SsoResult:
    """The checks against the database, in the sign-in's transaction; raises _Refused."""
    user = _user_for(conn, sso, verified.name_id)
    if user is None:
        raise _Refused(
            UNKNOWN_USER,
            "Your identity provider signed you in as a user this account does not have "
            f"({verified.name_id[:128]}). Ask your administrator to create the RAM user.",
        )
    profile = conn.execute(select(login_profiles).where(login_profiles.c.user_id == user.id)).first()
    if user.status != "active":
        raise _Refused(USER_DISABLED, "Your RAM user is disabled.", user)
    if profile is None or profile.status != "Active":
        raise _Refused(LOGIN_DISABLED, "Console logon is not enabled for your RAM user.", user)
    prefs = load_preferences(conn, sso.account_id)
    if not prefs.allows_login_from(origin.source_ip):
        raise _Refused(NETWORK_DENIED, "Console logon is not allowed from this network (LoginNetworkMasks).", user)
    next_path = None
    if verified.in_response_to is not None:
        request = conn.execute(
            select(saml_authn_requests).where(
                saml_authn_requests.c.request_id == verified.in_response_to[:64],
                saml_authn_requests.c.account_id == sso.account_id,
            )
        ).first()
        if request is None or request.expires_ms <= now:
            raise _Refused(
                UNKNOWN_REQUEST,
                "The Response answers a sign-in request this console did not send, already answered, or that "
                "expired. Start the sign-in again.",
                user,
            )
        conn.execute(delete(saml_authn_requests).where(saml_authn_requests.c.request_id == request.request_id))
        next_path = request.next_path
    try:
        with conn.begin_nested():  # a savepoint: the replay's failure leaves the transaction usable for its event
            conn.execute(
                insert(saml_assertions_used).values(
                    account_id=sso.account_id,
                    assertion_id=verified.assertion_id,
                    used_ms=now,
                    expires_ms=verified.valid_until_ms,
                )
            )
    except IntegrityError:
        raise _Refused(REPLAYED, "This SAML Assertion was already used to sign in: it is good for one sign-in.", user)
    conn.execute(update(login_profiles).where(login_profiles.c.user_id == user.id).values(last_login_ms=now))
    conn.execute(update(users).where(users.c.id == user.id).values(last_login_ms=now))
    session_ms = prefs.login_session_duration * 3600 * 1000
    if verified.session_not_on_or_after_ms is not None:
        session_ms = max(min(session_ms, verified.session_not_on_or_after_ms - now), 1000)
    idp_entity = sso.idp.entity_id if sso.idp else ""
    event_id = _event(rt, conn, sso.account_id, origin, now, idp_entity, verified, user, None, session_ms)
    return SsoResult(
        True,
        sso.account_id,
        user.id,
        user.upn,
        next_path=next_path,
        session_ms=session_ms,
        event_id=event_id,
    )


def _user_for(conn: Connection, sso: AccountSso, name_id: str) -> Row[Any] | None:
    """The RAM user a NameID names: `name@domain` with a domain of the account (default, domain alias or the
    auxiliary domain), or the bare name when SsoLoginWithDomain is off."""
    if has_control(name_id) or len(name_id) > 256:
        return None
    if sso.login_with_domain:
        name, at, domain = name_id.rpartition("@")
        allowed = {d.lower() for d in accounts.user_domains(conn, sso.account_id)}
        if sso.auxiliary_domain:
            allowed.add(sso.auxiliary_domain.lower())
        if not at or not name or domain.lower() not in allowed:
            return None
    elif "@" in name_id:
        return None
    else:
        name = name_id
    return conn.execute(
        select(users).where(
            users.c.account_id == sso.account_id, users.c.deleted_ms.is_(None), func.lower(users.c.name) == name.lower()
        )
    ).first()


def _record(
    rt: Runtime,
    conn: Connection,
    account_id: str,
    origin: Origin,
    now: int,
    idp_entity: str,
    verified: saml_response.Verified | None,
    refused: saml_response.Refusal,
) -> SsoResult:
    if conn.execute(select(accounts_table.c.id).where(accounts_table.c.id == account_id)).first() is None:
        return SsoResult(False, account_id, error_code=refused.code, error_message=refused.message)
    user = refused.user if isinstance(refused, _Refused) else None
    event_id = _event(rt, conn, account_id, origin, now, idp_entity, verified, user, refused, 0)
    return SsoResult(
        False,
        account_id,
        user.id if user else None,
        user.upn if user else None,
        error_code=refused.code,
        error_message=refused.message,
        event_id=event_id,
    )


def _event(
    rt: Runtime,
    conn: Connection,
    account_id: str,
    origin: Origin,
    now: int,
    idp_entity: str,
    verified: saml_response.Verified | None,
    user: Row[Any] | None,
    refused: saml_response.Refusal | None,
    session_ms: int,
) -> str:
    """The ConsoleSignin event. The NameID is recorded only once the signature verified: before that it is
    whatever anyone typed."""
    login = user.upn if user else (verified.name_id[:128] if verified else "")
    principal = Principal(
        account_id=account_id,
        kind=RAM_USER,
        principal_id=user.id if user else "",
        user_name=login,
        user_id=user.id if user else None,
        mfa_authenticated=False,
        event_type="ConsoleSignin",
        session_created_ms=now if refused is None else None,
    )
    extra: dict[str, Any] = {
        "loginType": "saml",
        "SamlIdpEntityId": idp_entity[:1024],
    }
    if verified is not None:
        extra.update(
            SamlNameId=verified.name_id[:256],
            SamlAssertionId=verified.assertion_id,
            SamlFlow="SP-initiated" if verified.in_response_to else "IdP-initiated",
        )
    if refused is None:
        extra["SessionDuration"] = session_ms // 1000
    return outside_api.console_signin(
        rt,
        conn,
        principal,
        origin,
        login=login,
        mfa_checked=False,
        error=None if refused is None else (refused.code, refused.message),
        resources=[(USER, user.upn)] if user else [],
        extra=extra,
        event_ms=now,
    )
