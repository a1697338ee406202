"""Authorization judges the very resource the handler acts on, for every action of the table.

A RAM user is allowed everything, but only on its own user, on one group and on the account's custom
policies (`policy/*`, which RAM reads as custom policies only). For each action whose resource is a user, a
group or a policy, each way of naming another one (the victim) by omitting, defaulting, changing the case
of or re-encoding a parameter must either be refused by authorization, or leave the handler touching no
victim. The allowed resources themselves must pass authorization, so the grant is known to work.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from openims import accounts, clock, ids
from openims.actions.context import CallContext
from openims.actions.registry import IMS, RAM, Action
from openims.actions.table import ACTIONS
from openims.api import dispatch
from openims.cli.operator import call
from openims.errors import ApiError
from openims.principal import RAM_USER, Principal
from openims.runtime import Runtime

USER, GROUP, POLICY = "ACS::RAM::User", "ACS::RAM::Group", "ACS::RAM::Policy"
FIELDS = ("UserPrincipalName", "UserName", "GroupName", "PolicyName")


@dataclass
class World:
    account_id: str
    mallory: Principal
    mallory_upn: str
    victim_upn: str
    victim_id: str
    victim_key: str
    domain: str


@pytest.fixture
def world(rt: Runtime) -> World:
    acct = accounts.create_account(rt, "resolution")
    domain = accounts.default_domain(acct.alias)

    def ims(action: str, params: dict[str, str]) -> dict[str, Any]:
        return call(rt, acct.account_id, action, params, IMS)

    def ram(action: str, params: dict[str, str]) -> dict[str, Any]:
        return call(rt, acct.account_id, action, params, RAM)

    mallory = ims("CreateUser", {"UserPrincipalName": f"mallory@{domain}", "DisplayName": "m"})["User"]
    victim = ims("CreateUser", {"UserPrincipalName": f"victim@{domain}", "DisplayName": "v"})["User"]
    victim_key = ims("CreateAccessKey", {"UserPrincipalName": victim["UserPrincipalName"]})["AccessKey"]
    for group in ("staff", "admins"):
        ims("CreateGroup", {"GroupName": group})
    ims("AddUserToGroup", {"GroupName": "admins", "UserPrincipalName": victim["UserPrincipalName"]})
    ram("AttachPolicyToUser", {"PolicyName": "AdministratorAccess", "PolicyType": "System", "UserName": "victim"})
    ram("AttachPolicyToGroup", {"PolicyName": "AdministratorAccess", "PolicyType": "System", "GroupName": "admins"})
    arn = f"acs:ram:*:{acct.account_id}:"
    scope = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ram:*"],
                "Resource": [arn + "user/mallory", arn + "group/staff", arn + "policy/*"],
            }
        ],
    }
    ram("CreatePolicy", {"PolicyName": "MalloryScope", "PolicyDocument": json.dumps(scope)})
    ram("AttachPolicyToUser", {"PolicyName": "MalloryScope", "PolicyType": "Custom", "UserName": "mallory"})
    principal = Principal(
        acct.account_id, RAM_USER, mallory["UserId"], mallory["UserPrincipalName"], user_id=mallory["UserId"]
    )
    return World(
        acct.account_id,
        principal,
        mallory["UserPrincipalName"],
        victim["UserPrincipalName"],
        victim["UserId"],
        victim_key["AccessKeyId"],
        domain,
    )


def _allowed(w: World) -> dict[str, Any]:
    return {
        "UserPrincipalName": w.mallory_upn,
        "UserName": "mallory",
        "GroupName": "staff",
        "PolicyName": "MalloryScope",
        "PolicyType": "Custom",
    }


def _victims(w: World, action: Action, field: str) -> Iterator[dict[str, Any]]:
    """Every way this test knows of naming the victim in `field`."""
    names = {p.name for p in action.params}
    if field == "UserPrincipalName":
        yield {field: w.victim_upn}
        yield {field: w.victim_upn.upper()}
        yield {field: quote(w.victim_upn)}
        if "UserId" in names:
            yield {field: None, "UserId": w.victim_id}
        if "UserAccessKeyId" in names:
            yield {field: None, "UserAccessKeyId": w.victim_key}
    elif field == "UserName":
        yield from ({field: name} for name in ("victim", "VICTIM", "victim@" + w.domain))
    elif field == "GroupName":
        yield from ({field: name} for name in ("admins", "ADMINS", "%61dmins"))
    elif field == "PolicyName":
        for name in ("AdministratorAccess", "administratoraccess"):
            yield {field: name, "PolicyType": None}
        yield {field: "AdministratorAccess", "PolicyType": "System"}
        yield {field: "AdministratorAccess", "PolicyType": "system"}


def _touched_victims(ctx: CallContext, w: World) -> set[tuple[str, str]]:
    victims = {(USER, w.victim_upn.lower()), (GROUP, "admins"), (POLICY, "administratoraccess")}
    return {(kind, name.lower()) for kind, name in ctx.resources} & victims


class _Rollback(Exception):
    pass


def _attempt(rt: Runtime, w: World, action: Action, given: dict[str, Any]) -> str:
    """Authorize and (when allowed) run the handler in a transaction that is rolled back; returns
    "refused", "allowed" or what the handler touched of the victims."""
    params: dict[str, Any] = {p.name: getattr(p, "default", None) for p in action.params}
    params.update({k: v for k, v in _allowed(w).items() if k in params})
    params.update(given)
    outcome = "allowed"
    try:
        with rt.db.transaction() as conn:
            ctx = CallContext(conn, w.mallory, rt, ids.request_id(), "127.0.0.1", "test", clock.now_ms())
            try:
                resolved = dispatch.authorize_resolved(ctx, action, params)
            except ApiError as err:
                outcome = "refused" if err.code == "NoPermission" else "allowed"
                raise _Rollback from None
            # Any failure of the handler is fine, so long as it touched no victim first.
            with contextlib.suppress(Exception):
                if action.prepare is not None:
                    ctx.prepared = action.prepare(ctx, resolved)
                action.handler(ctx, resolved)
            if touched := _touched_victims(ctx, w):
                outcome = f"touched {sorted(touched)}"
            raise _Rollback
    except _Rollback:
        pass
    return outcome


CASES = [
    (a, field)
    for a in ACTIONS.all()
    for field in FIELDS
    if "{" + field + "}" in a.arn or (field == "UserPrincipalName" and a.self_service and "{" not in a.arn)
]


@pytest.mark.parametrize(("action", "field"), CASES, ids=[f"{a.name}-{f}" for a, f in CASES])
def test_another_resource_cannot_be_reached_through_a_parameter(
    rt: Runtime, world: World, action: Action, field: str
) -> None:
    assert _attempt(rt, world, action, {}) == "allowed", "the grant on the caller's own resources must work"
    for given in _victims(world, action, field):
        outcome = _attempt(rt, world, action, given)
        assert not outcome.startswith("touched"), f"{action.name} {given}: {outcome}"


def test_every_action_naming_a_user_group_or_policy_is_covered() -> None:
    named = {
        a.name for a in ACTIONS.all() if re.search(r"\{(UserPrincipalName|UserName|GroupName|PolicyName)\}", a.arn)
    }
    assert named <= {a.name for a, _ in CASES}
    assert len(CASES) >= 40
