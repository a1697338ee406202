"""CSRF protection for every console form.

Signed-in forms carry the session's synchronizer token (stored server-side with the session). The sign-in
form, before any session exists, carries a token bound to a random pre-session cookie by the master key's
MAC, so a cross-site page can neither read nor forge it (login CSRF).
"""

from __future__ import annotations

import base64
import hmac
import secrets

from openims.runtime import Runtime

FIELD = "csrf_token"
PRE_COOKIE = "openims_presession"


class CsrfError(Exception):
    """The form's token is missing or wrong: the request is refused with 403."""


def check(sent: str | None, expected: str) -> None:
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfError("missing or invalid CSRF token")


def new_presession() -> str:
    return secrets.token_urlsafe(24)


def presession_token(rt: Runtime, presession: str) -> str:
    """The sign-in form's token for this browser's pre-session cookie."""
    mac = rt.master_key.mac(b"console-signin-csrf:" + presession.encode())
    return base64.urlsafe_b64encode(mac[:24]).decode()


def check_presession(rt: Runtime, sent: str | None, presession: str | None) -> None:
    if not presession or len(presession) > 64:
        raise CsrfError("missing pre-session cookie")
    check(sent, presession_token(rt, presession))
