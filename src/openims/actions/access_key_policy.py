"""The actions that read and set AccessKey network access policies (enforced by
openims.credentials.network_policy; the document format is described there)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from openims.actions.access_keys import ACCESS_KEY, KEY_ID, find_key
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.actions.users import UPN_OPTIONAL, USER
from openims.credentials import network_policy
from openims.errors import invalid
from openims.params import Str
from openims.store.tables.keys import access_key_policies

POLICY = Str("AccessKeyPolicy", required=True, max_len=network_policy.MAX_DOCUMENT)


def _stored(conn: Connection, row_id: str) -> str:
    found = conn.execute(select(access_key_policies.c.document).where(access_key_policies.c.id == row_id)).scalar()
    return found or network_policy.DEFAULT_DOCUMENT


def _store(ctx: CallContext, row_id: str, key_id: str | None, text: str) -> str:
    """Save a validated policy (the unrestricted one removes the row); returns its canonical form."""
    document, networks = network_policy.parse(text)
    if networks is None:
        ctx.conn.execute(delete(access_key_policies).where(access_key_policies.c.id == row_id))
        return network_policy.DEFAULT_DOCUMENT
    values = {"document": document, "updated_ms": ctx.now_ms}
    if not ctx.conn.execute(
        update(access_key_policies).where(access_key_policies.c.id == row_id).values(**values)
    ).rowcount:
        ctx.conn.execute(
            insert(access_key_policies).values(id=row_id, account_id=ctx.account_id, access_key_id=key_id, **values)
        )
    return document


def _guard_caller(ctx: CallContext, text: str) -> None:
    """Refuse a policy that would lock out the very key and address setting it."""
    if not network_policy.allows(network_policy.parse(text)[1], ctx.source_ip):
        raise invalid(
            "AccessKeyPolicy",
            "DeniesCaller",
            f"The policy would refuse the AccessKey making this request "
            f"(from {ctx.source_ip}): include that address, or set it with another key.",
        )


@action(
    "GetAccessKeyPolicy",
    params=(KEY_ID, UPN_OPTIONAL),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
)
def get_access_key_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The network access policy of an AccessKey (the unrestricted policy when none is set)."""
    row = find_key(ctx, p["UserAccessKeyId"], p["UserPrincipalName"])
    return {"AccessKeyId": row.id, "AccessKeyPolicy": _stored(ctx.conn, row.id)}


@action(
    "SetAccessKeyPolicy",
    rw=WRITE,
    params=(POLICY, KEY_ID, UPN_OPTIONAL),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    arn="user/{UserPrincipalName}",
    resources=((USER, "UserPrincipalName"),),
    sensitive=True,
)
def set_access_key_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Set the network access policy of an AccessKey: requests it signs from other addresses are refused."""
    row = find_key(ctx, p["UserAccessKeyId"], p["UserPrincipalName"])
    if row.id == ctx.principal.access_key_id:
        _guard_caller(ctx, p["AccessKeyPolicy"])
    return {"AccessKeyId": row.id, "AccessKeyPolicy": _store(ctx, row.id, row.id, p["AccessKeyPolicy"])}


@action("GetAccessKeyPolicyForAccount")
def get_access_key_policy_for_account(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account-wide network access policy that applies to every AccessKey of the account."""
    return {"AccessKeyPolicy": _stored(ctx.conn, network_policy.account_row_id(ctx.account_id))}


@action("SetAccessKeyPolicyForAccount", rw=WRITE, params=(POLICY,), sensitive=True)
def set_access_key_policy_for_account(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Set the account-wide network access policy: it applies to every AccessKey of the account, on top of
    each key's own policy."""
    if ctx.principal.access_key_id:
        _guard_caller(ctx, p["AccessKeyPolicy"])
    return {"AccessKeyPolicy": _store(ctx, network_policy.account_row_id(ctx.account_id), None, p["AccessKeyPolicy"])}
