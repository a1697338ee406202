"""What the operator's commands do to an account: run its actions as the account's root identity, through the
same dispatch as an API call (validated, authorized, audited with userAgent `openims-cli`, failures too)."""

from __future__ import annotations

from typing import Any

from openims import accounts, ids
from openims.actions.registry import ACTIONTRAIL, Service
from openims.api import dispatch
from openims.api.protocol import RpcRequest
from openims.audit import outside_api
from openims.config import ConfigError
from openims.runtime import Runtime


def account_id(rt: Runtime, ref: str | None) -> str:
    """The account ID given, or the first account created; ConfigError if the data dir has no such account."""
    listed = accounts.list_accounts(rt)
    account = ref or (listed[0]["AccountId"] if listed else "")
    if account not in {a["AccountId"] for a in listed}:
        raise ConfigError(f"no account {account!r} in this data dir")
    return account


def call(
    rt: Runtime, account: str, action_name: str, params: dict[str, str], service: Service = ACTIONTRAIL
) -> dict[str, Any]:
    """Run `action_name` of `service` as the account's root identity; its event records it as the CLI's."""
    origin = outside_api.CLI
    req = RpcRequest(
        method="CLI",
        path="",
        raw_query="",
        body=b"",
        headers={},
        params=params,
        action=action_name,
        version=service.version,
        source_ip=origin.source_ip,
        user_agent=origin.user_agent,
        host="",
        request_id=ids.request_id(),
    )
    return dispatch.execute(rt, req, outside_api.root_of(account))
