"""Who is calling: the result of authentication, used by authorization and by the audit event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROOT = "root-account"
RAM_USER = "ram-user"
# Whoever resent a request already made: it holds a copy of a signed request, which proves nothing about who.
UNKNOWN = "unknown"
# OpenIMS itself, enforcing a rule in housekeeping (an idle AccessKey disabled).
SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    account_id: str
    kind: str
    # The RAM user's ID; for the root account, the account ID (as ActionTrail's principalId).
    principal_id: str
    # "root" for the root account, else the RAM user's UserPrincipalName.
    user_name: str
    access_key_id: str = ""
    user_id: str | None = None
    mfa_authenticated: bool = False
    # "ApiCall" for signed API requests, "ConsoleOperation" for the web console.
    event_type: str = "ApiCall"
    session_created_ms: int | None = None
    # The account's authz_version when the key was looked up: lets authorization reuse what it cached for
    # this user and key (policies in force, network ACLs); None, as for console sessions, means read them.
    authz_version: int | None = None

    @property
    def is_root(self) -> bool:
        return self.kind == ROOT

    def identity(self) -> dict[str, Any]:
        """The event's `userIdentity`."""
        out: dict[str, Any] = {
            "type": self.kind,
            "principalId": self.principal_id,
            "accountId": self.account_id,
            "accessKeyId": self.access_key_id,
            "userName": self.user_name,
        }
        if self.session_created_ms is not None or self.mfa_authenticated:
            from openims.clock import iso

            out["sessionContext"] = {
                "attributes": {
                    "mfaAuthenticated": "true" if self.mfa_authenticated else "false",
                    "creationDate": iso(self.session_created_ms),
                }
            }
        return out
