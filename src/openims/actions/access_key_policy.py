"""AccessKey network access policies: from which source addresses a key may sign requests, per key and
account-wide, enforced right after the signature is verified (a `KEY_CHECKS` hook).

The policy document (OpenIMS's format; see docs/recycle-bin-and-keys.md):
    {"Version": "1", "Conditions": [{"SourceIp": ["203.0.113.0/24", "2001:db8::/32"], "Description": "office"}]}
A request is allowed when its source address is in any condition. A key-level and the account-level policy
both apply: a request must satisfy each one that is set. The unrestricted policy (0.0.0.0/0 and ::/0) is
what a key or account without a policy has; setting it removes the restriction.

Compiled policies are cached per process under the account's `authz_version`, which the key lookup reads
and which database triggers bump whenever a policy row changes (migration 0009): the check reads the
database only after a change, and a change applies from the next call in every process.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from openims.actions import account_summary
from openims.actions.access_key_usage import gate_like_access_keys
from openims.actions.access_keys import ACCESS_KEY, KEY_ID, find_key
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.actions.users import UPN_OPTIONAL
from openims.api import signing
from openims.api.protocol import RpcRequest
from openims.authz.cache import LruCache
from openims.errors import ApiError, invalid
from openims.params import Str, load_json
from openims.principal import Principal
from openims.runtime import PerDatabase, Runtime
from openims.store.tables.keys import access_key_policies

VERSION = "1"
MAX_CONDITIONS = 10
MAX_IP_ITEMS = 100
MAX_DOCUMENT = 8192
UNRESTRICTED = ("0.0.0.0/0", "::/0")
DEFAULT_DOCUMENT = json.dumps(
    {"Version": VERSION, "Conditions": [{"SourceIp": list(UNRESTRICTED)}]}, separators=(",", ":")
)

POLICY = Str("AccessKeyPolicy", required=True, max_len=MAX_DOCUMENT)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _bad(message: str) -> ApiError:
    return invalid("AccessKeyPolicy", "Format", f'The parameter - "AccessKeyPolicy" is not valid: {message}.')


def parse(text: str) -> tuple[str, tuple[Network, ...] | None]:
    """Validate a policy document; returns its canonical JSON and its networks (None when unrestricted)."""
    try:
        doc = load_json(text)
    except ValueError:
        raise _bad("it must be a JSON object") from None
    if not isinstance(doc, dict) or set(doc) - {"Version", "Conditions"}:
        raise _bad('it must be a JSON object with only "Version" and "Conditions"')
    if doc.get("Version") != VERSION:
        raise _bad(f'"Version" must be "{VERSION}"')
    conditions = doc.get("Conditions")
    if not isinstance(conditions, list) or not conditions:
        raise _bad('"Conditions" must be a non-empty list (use 0.0.0.0/0 and ::/0 to allow every address)')
    if len(conditions) > MAX_CONDITIONS:
        raise ApiError(
            "LimitExceeded.AccessKeyPolicy.Conditions", f"A policy can have at most {MAX_CONDITIONS} conditions."
        )
    canonical, networks = [], []
    for i, cond in enumerate(conditions, 1):
        if not isinstance(cond, dict) or set(cond) - {"SourceIp", "Description"}:
            raise _bad(f'condition {i} must be an object with "SourceIp" and an optional "Description"')
        ips = cond.get("SourceIp")
        if not isinstance(ips, list) or not ips or not all(isinstance(ip, str) for ip in ips):
            raise _bad(f'condition {i}: "SourceIp" must be a non-empty list of IP addresses or CIDR blocks')
        description = cond.get("Description", "")
        if not isinstance(description, str) or len(description) > 128:
            raise _bad(f'condition {i}: "Description" must be a string of at most 128 characters')
        for ip in ips:
            try:
                networks.append(ipaddress.ip_network(ip.strip(), strict=False))
            except ValueError:
                raise _bad(f"condition {i}: {ip[:64]!r} is not an IP address or CIDR block") from None
        canonical.append(
            {"SourceIp": [ip.strip() for ip in ips], **({"Description": description} if description else {})}
        )
    if len(networks) > MAX_IP_ITEMS:
        raise ApiError(
            "LimitExceeded.AccessKeyPolicy.IpItems",
            f"A policy can list at most {MAX_IP_ITEMS} addresses or CIDR blocks.",
        )
    text = json.dumps({"Version": VERSION, "Conditions": canonical}, ensure_ascii=False, separators=(",", ":"))
    unrestricted = any(n.prefixlen == 0 for n in networks if n.version == 4) and any(
        n.prefixlen == 0 for n in networks if n.version == 6
    )
    return text, None if unrestricted else tuple(networks)


@lru_cache(maxsize=4096)
def _compiled(document: str) -> tuple[Network, ...] | None:
    return parse(document)[1]


def allows(networks: Sequence[Network] | None, source_ip: str) -> bool:
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def _account_row_id(account_id: str) -> str:
    return f"account:{account_id}"


Acls = tuple[tuple[Network, ...] | None, tuple[Network, ...] | None]


class PolicyCache:
    """Compiled (key policy, account policy) per AccessKey ID, for one database, with the account's
    authz_version they were read under."""

    def __init__(self) -> None:
        self._entries: LruCache[tuple[int, Acls]] = LruCache()

    def policies(self, rt: Runtime, principal: Principal) -> Acls:
        key_id, version = principal.access_key_id, principal.authz_version
        entry = self._entries.get(key_id)
        if entry is not None and version is not None and entry[0] == version:
            return entry[1]
        rows = (key_id, _account_row_id(principal.account_id))
        with rt.db.read() as conn:
            found = {
                r.id: r.document
                for r in conn.execute(
                    select(access_key_policies.c.id, access_key_policies.c.document).where(
                        access_key_policies.c.id.in_(rows)
                    )
                )
            }
        acls = (
            _compiled(found[key_id]) if key_id in found else None,
            _compiled(found[rows[1]]) if rows[1] in found else None,
        )
        if version is not None:
            self._entries.put(key_id, (version, acls))
        return acls


cache = PerDatabase(PolicyCache)


def check_source(rt: Runtime, key: signing.KeyRecord, req: RpcRequest) -> None:
    """KEY_CHECKS hook: refuse (and audit in the key's account) a request from outside the key's policies."""
    principal = key.principal
    key_acl, account_acl = cache(rt).policies(rt, principal)
    for networks, whose in ((key_acl, "AccessKey's"), (account_acl, "account's AccessKey")):
        if not allows(networks, req.source_ip):
            raise signing.AuthError(
                "NoPermission",
                f"The {whose} network access policy does not allow requests "
                f"from {req.source_ip or 'an unknown address'}.",
                principal,
            )


def _stored(conn: Connection, row_id: str) -> str:
    found = conn.execute(select(access_key_policies.c.document).where(access_key_policies.c.id == row_id)).scalar()
    return found or DEFAULT_DOCUMENT


def _store(ctx: CallContext, row_id: str, key_id: str | None, text: str) -> str:
    """Save a validated policy (the unrestricted one removes the row); returns its canonical form."""
    document, networks = parse(text)
    if networks is None:
        ctx.conn.execute(delete(access_key_policies).where(access_key_policies.c.id == row_id))
        return DEFAULT_DOCUMENT
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
    if not allows(parse(text)[1], ctx.source_ip):
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
    self_service=True,
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
    return {"AccessKeyPolicy": _stored(ctx.conn, _account_row_id(ctx.account_id))}


@action("SetAccessKeyPolicyForAccount", rw=WRITE, params=(POLICY,))
def set_access_key_policy_for_account(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Set the account-wide network access policy: it applies to every AccessKey of the account, on top of
    each key's own policy."""
    if ctx.principal.access_key_id:
        _guard_caller(ctx, p["AccessKeyPolicy"])
    return {"AccessKeyPolicy": _store(ctx, _account_row_id(ctx.account_id), None, p["AccessKeyPolicy"])}


# Runs before any other check, so a refused request is neither counted as a use of the key nor anything else.
signing.KEY_CHECKS.insert(0, check_source)
gate_like_access_keys("GetAccessKeyPolicy")
account_summary.QUOTAS.update({"ConditionsPerAKPolicyQuota": MAX_CONDITIONS, "IPItemsPerAKPolicyQuota": MAX_IP_ITEMS})
