"""Every step of the authorization server is an event in the application's account, recorded in the same
transaction as the step (through `audit.outside_api`, so trails and the integrity log get it like any other):
`OAuthAuthorize` (granted, or refused with the reason), `OAuthIssueToken`, `OAuthRefreshToken`,
`OAuthRevokeToken`, and `OAuthIntrospectToken` when an introspection finds no active token. Each names the
application (resource `ACS::RAM::Application`, its AppId) and the user; no code, token or secret is ever in one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from openims.actions.registry import Service
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.oauth.owners import Owner
from openims.principal import UNKNOWN, Principal
from openims.runtime import Runtime

# The events' service: Alibaba Cloud's OAuth service, by the host its token endpoint lives on.
OAUTH = Service("OAuth", "", "oauth.aliyun.com", "")
APPLICATION = "ACS::RAM::Application"
USER = "ACS::RAM::User"

AUTHORIZE = "OAuthAuthorize"
ISSUE = "OAuthIssueToken"
REFRESH = "OAuthRefreshToken"
REVOKE = "OAuthRevokeToken"
INTROSPECT = "OAuthIntrospectToken"


@dataclass
class Step:
    """What one request to the authorization server did, gathered as it runs, for its event."""

    name: str
    account_id: str | None = None
    app_id: str | None = None
    app_name: str = ""
    owner: Owner | None = None
    mfa_authenticated: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    # A step that only showed a page (the consent form) and decided nothing: no event.
    silent: bool = False

    def application(self, account_id: str, app_id: str, app_name: str) -> None:
        self.account_id, self.app_id, self.app_name = account_id, app_id, app_name


def record(rt: Runtime, conn: Connection, step: Step, origin: Origin, error: tuple[str, str] | None) -> str | None:
    """The step's event in `conn`'s transaction; None when no application was named (it belongs to no account,
    so there is no account to record it in)."""
    if step.silent or step.account_id is None or step.app_id is None:
        return None
    resources = [(APPLICATION, step.app_id)]
    details = {"clientId": step.app_id, "appName": step.app_name, **step.details}
    principal = Principal(step.account_id, UNKNOWN, "", "")
    if step.owner is not None and step.owner.account_id == step.account_id:
        principal = step.owner.principal(step.mfa_authenticated)
        resources.append((USER, step.owner.upn))
    elif step.owner is not None:
        # A user of another account: the event belongs to the application's account, which names the user
        # without making it the caller (an identity of one account never appears as another's).
        details.update(foreignUser=step.owner.upn, foreignAccountId=step.owner.account_id)
    return outside_api.record(
        rt,
        conn,
        step.name,
        principal,
        origin,
        service=OAUTH,
        resource_type=APPLICATION,
        resources=resources,
        response={} if error is None else None,
        error=error,
        additional=details,
    )
