"""The policy decider: judges every call of a RAM user against the policies attached to the user and to
its groups, and describes a denial in AccessDeniedDetail.

Which policies apply to a user (its own and its groups' attachments, with each custom policy's default
version) is cached per process under the account's `authz_version`, which the AccessKey lookup reads in
the same query as the key. Database triggers bump that counter on every attachment, group membership and
default-version change, whoever makes it (any family, any server process, cascades), so a change counts
from the next call everywhere, with nothing for application code to remember. Compiled versions come from
their own cache (cache.py).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, and_, bindparam, literal, or_, select, union_all

from openims import clock
from openims.authz import system
from openims.authz.cache import COMPILED, LruCache
from openims.authz.document import parse
from openims.authz.evaluate import CompiledPolicy, Facts, compile_document, decide, explain
from openims.errors import ApiError
from openims.runtime import PerDatabase
from openims.store.schema import access_keys, group_members, users
from openims.store.tables.policies import group_policies, policies, policy_versions, user_policies

if TYPE_CHECKING:
    from openims.actions.context import CallContext
    from openims.actions.registry import Action

log = logging.getLogger("openims.policy")
_FIELD = re.compile(r"\{(\w+)\}")
# Template fields that name a RAM user: absent, they mean the user the call is about (see _implied_user).
USER_FIELDS = frozenset({"UserPrincipalName", "UserName"})
POLICY_TYPE = "AccountLevelIdentityBasedPolicy"
DIAGNOSTIC_CONTEXT = "openims-diagnostic:"


@dataclass(frozen=True)
class Attached:
    entity: str  # User or Group: where the policy is attached
    policy: CompiledPolicy


def _attachment_query() -> Any:
    uid: Any = bindparam("uid")
    direct = (
        select(
            literal("User").label("entity"),
            user_policies.c.policy_type,
            user_policies.c.policy_name,
            user_policies.c.policy_id,
            policies.c.default_version,
        )
        .select_from(user_policies.outerjoin(policies, policies.c.id == user_policies.c.policy_id))
        .where(user_policies.c.user_id == uid)
    )
    via_groups = (
        select(
            literal("Group").label("entity"),
            group_policies.c.policy_type,
            group_policies.c.policy_name,
            group_policies.c.policy_id,
            policies.c.default_version,
        )
        .select_from(
            group_policies.join(group_members, group_members.c.group_id == group_policies.c.group_id).outerjoin(
                policies, policies.c.id == group_policies.c.policy_id
            )
        )
        .where(group_members.c.user_id == uid)
    )
    return union_all(direct, via_groups)


_ATTACHMENTS = _attachment_query()
# Per database: user ID -> ((the account's authz_version it was read under, the database's epoch), the user's policies
# in force).
_IN_FORCE: PerDatabase[LruCache[tuple[tuple[int, int], tuple[Attached, ...]]]] = PerDatabase(LruCache)


def in_force(ctx: CallContext) -> tuple[Attached, ...]:
    """The caller's policies: cached while the account's authz_version (read with the key) is unchanged."""
    principal = ctx.principal
    if not principal.user_id:
        return ()
    if principal.authz_version is None:
        return tuple(attached_policies(ctx.conn, principal.user_id))
    cache = _IN_FORCE(ctx.runtime)
    version = (principal.authz_version, ctx.runtime.db.epoch)
    cached = cache.get(principal.user_id)
    if cached is not None and cached[0] == version:
        return cached[1]
    found = tuple(attached_policies(ctx.conn, principal.user_id))
    cache.put(principal.user_id, (version, found))
    return found


def attached_policies(conn: Connection, user_id: str) -> list[Attached]:
    """The compiled policies in force for a RAM user: its own and its groups' (one query, plus one more
    only for custom versions not yet compiled in this process)."""
    rows = conn.execute(_ATTACHMENTS, {"uid": user_id}).all()
    out: list[Attached] = []
    missing: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in rows:
        if row.policy_type == system.SYSTEM:
            found = system.find(row.policy_name)
            if found is not None:
                out.append(Attached(row.entity, found.compiled))
            continue
        if row.policy_id is None:
            continue
        compiled = COMPILED.get((system.CUSTOM, row.policy_id, row.default_version))
        if compiled is None:
            missing.setdefault((row.policy_id, row.default_version), []).append((row.entity, row.policy_name))
        else:
            out.append(Attached(row.entity, compiled))
    if missing:
        wanted = or_(
            *(and_(policy_versions.c.policy_id == pid, policy_versions.c.version_id == vid) for pid, vid in missing)
        )
        for doc in conn.execute(
            select(policy_versions.c.policy_id, policy_versions.c.version_id, policy_versions.c.document).where(wanted)
        ):
            for entity, name in missing[(doc.policy_id, doc.version_id)]:
                compiled = compile_document(parse(doc.document), system.CUSTOM, name, doc.version_id)
                COMPILED.put((system.CUSTOM, doc.policy_id, doc.version_id), compiled)
                out.append(Attached(entity, compiled))
    return out


def context(ctx: CallContext) -> dict[str, str]:
    """The condition keys OpenIMS supplies (lower-cased: keys compare case-insensitively)."""
    return {
        "acs:sourceip": ctx.source_ip,
        "acs:mfapresent": "true" if ctx.principal.mfa_authenticated else "false",
        "acs:securetransport": "true" if getattr(ctx, "scheme", "http") == "https" else "false",
        "acs:currenttime": clock.iso(ctx.now_ms),
    }


def resource_arns(ctx: CallContext, action: Action, params: dict[str, Any]) -> tuple[str, ...]:
    """The full ARNs of the declaration's template(s): `user/{UserPrincipalName}` ->
    `acs:ram:*:<account>:user/<login name>`; several templates are separated by commas."""
    out = []
    for template in action.arn.split(","):
        template = template.strip()
        # RAM names a system policy acs:ram:*:system:policy/<name>: a grant on the account's policy/* covers
        # custom policies only, and cannot be used to attach AdministratorAccess.
        system_policy = template.startswith("policy/") and str(params.get("PolicyType") or "").lower() == "system"
        owner = "system" if system_policy else ctx.account_id
        out.append(
            f"acs:{action.service.ram_prefix}:*:{owner}:"
            + _FIELD.sub(lambda m: _field(ctx, m.group(1), params), template)
        )
    return tuple(out)


def _field(ctx: CallContext, name: str, params: dict[str, Any]) -> str:
    value = params.get(name)
    if name in USER_FIELDS and not value:
        value = _implied_user(ctx, params)
    text = "" if value is None else str(value)
    if name == "SerialNumber":  # acs:ram::<account>:mfa/<device name> -> the device name
        return text.rsplit("mfa/", 1)[-1]
    # RAM names a user by its login name: the part of a UserPrincipalName before the @.
    return text.split("@", 1)[0] if "@" in text else text


def _implied_user(ctx: CallContext, params: dict[str, Any]) -> str:
    """The user a call names by UserId or by one of its AccessKey IDs; with neither, the caller itself."""
    if params.get("UserId"):
        name = ctx.conn.execute(
            select(users.c.name).where(users.c.id == params["UserId"], users.c.account_id == ctx.account_id)
        ).scalar()
        return name or str(params["UserId"])
    if params.get("UserAccessKeyId"):
        name = ctx.conn.execute(
            select(users.c.name)
            .join(access_keys, access_keys.c.user_id == users.c.id)
            .where(access_keys.c.id == params["UserAccessKeyId"], access_keys.c.account_id == ctx.account_id)
        ).scalar()
        return name or str(params["UserAccessKeyId"])
    return ctx.principal.user_name


def facts(ctx: CallContext, action: Action, params: dict[str, Any]) -> Facts:
    return Facts(action.ram_action, resource_arns(ctx, action, params), context(ctx))


def policy_decider(ctx: CallContext, action: Action, params: dict[str, Any]) -> bool | None:
    """False on an explicit Deny, True when the caller's policies allow the call, None when none speaks."""
    if ctx.principal.is_root:
        return None
    found = in_force(ctx)
    if not found:
        return None
    return decide([a.policy for a in found], facts(ctx, action, params))


def denial_details(ctx: CallContext, action: Action, params: dict[str, Any], reason: str) -> dict[str, Any]:
    """A denial's PolicyType and EncodedDiagnosticMessage (sealed with the master key,
    readable only through this account's DecodeDiagnosticMessage)."""
    try:
        found = in_force(ctx)
        call = facts(ctx, action, params)
        verdict = explain([a.policy for a in found], call)
        entity = {id(a.policy): a.entity for a in found}
        message = {
            "AuthAction": action.ram_action,
            "AuthPrincipal": {
                "AuthPrincipalType": "SubUser",
                "AuthPrincipalOwnerId": ctx.account_id,
                "AuthPrincipalDisplayName": ctx.principal.principal_id,
            },
            "AuthResource": verdict.resource or (call.resources[0] if call.resources else ""),
            "AuthConditions": [
                {"ConditionKey": key, "ConditionValues": [value]}
                for key, value in (
                    ("acs:SourceIp", call.context["acs:sourceip"]),
                    ("acs:MFAPresent", call.context["acs:mfapresent"]),
                    ("acs:SecureTransport", call.context["acs:securetransport"]),
                    ("acs:CurrentTime", call.context["acs:currenttime"]),
                )
            ],
            "ExplicitDeny": reason == "ExplicitDeny",
            "NoPermissionPolicyType": POLICY_TYPE,
            "MatchedPolicies": [
                {
                    "PolicyIdentifier": p.name,
                    "PolicyType": p.policy_type,
                    "PolicyVersion": p.version if p.policy_type == system.CUSTOM else "",
                    "AttachedEntityType": entity.get(id(p), "User"),
                    "AttachedScope": "Account",
                    "Effect": s.effect,
                }
                for p, s in (verdict.matched if verdict.effect == "Deny" else [])
            ],
        }
        return {"PolicyType": POLICY_TYPE, "EncodedDiagnosticMessage": encode(ctx, message)}
    except Exception:  # a denial must still be NoPermission; the details are a courtesy
        log.exception("could not describe the denial of %s", action.ram_action)
        return {"PolicyType": POLICY_TYPE}


def encode(ctx: CallContext, message: dict[str, Any]) -> str:
    sealed = ctx.runtime.master_key.seal(
        json.dumps(message, separators=(",", ":")), context=DIAGNOSTIC_CONTEXT + ctx.account_id
    )
    return base64.b64encode(sealed).decode()


def decode(ctx: CallContext, encoded: str) -> dict[str, Any]:
    """The diagnostic message sealed by `encode` for this account; InvalidParameter otherwise."""
    try:
        text = ctx.runtime.master_key.open(
            base64.b64decode(encoded, validate=True), context=DIAGNOSTIC_CONTEXT + ctx.account_id
        )
        decoded = json.loads(text)
    except (ValueError, InvalidTag):
        raise ApiError(
            "InvalidParameter.EncodedDiagnosticMessage",
            'The parameter - "EncodedDiagnosticMessage" is not valid: pass the EncodedDiagnosticMessage of a '
            "NoPermission error of this account, unchanged.",
        ) from None
    if not isinstance(decoded, dict):
        raise ApiError(
            "InvalidParameter.EncodedDiagnosticMessage", 'The parameter - "EncodedDiagnosticMessage" is not valid.'
        )
    return decoded
