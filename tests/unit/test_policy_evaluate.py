"""Compiled evaluation: wildcards, resources, conditions, explicit deny, system policies, the cache and ARNs."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from openims.actions.registry import ACTIONTRAIL, IMS, RAM, Action
from openims.authz import system
from openims.authz.cache import LruCache
from openims.authz.decide import context, resource_arns
from openims.authz.document import parse
from openims.authz.evaluate import CompiledPolicy, Facts, compile_document, decide, explain

ACCOUNT = "1234567890123456"
USER = f"acs:ram:*:{ACCOUNT}:user/"
CTX = {
    "acs:sourceip": "127.0.0.1",
    "acs:mfapresent": "false",
    "acs:securetransport": "false",
    "acs:currenttime": "2026-06-01T12:00:00Z",
}


def policy(*statements: dict[str, Any], name: str = "p") -> CompiledPolicy:
    return compile_document(parse(json.dumps({"Version": "1", "Statement": list(statements)})), "Custom", name, "v1")


def facts(action: str, *resources: str, **ctx: str) -> Facts:
    merged = {**CTX, **{k.lower().replace("_", ":", 1): v for k, v in ctx.items()}}
    return Facts(action, resources or (USER + "dev-1",), merged)


def allow(action: Any = "ram:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "ram:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_action_wildcards_are_case_insensitive() -> None:
    p = [policy(allow(["ram:Get*", "actiontrail:Lookup?vents"]))]
    assert decide(p, facts("ram:GetUser")) is True
    assert decide(p, facts("RAM:getuser")) is True
    assert decide(p, facts("actiontrail:LookupEvents")) is True
    assert decide(p, facts("actiontrail:LookupXXEvents")) is None
    assert decide(p, facts("ram:ListUsers")) is None
    assert decide(p, facts("ram:Get")) is True  # * matches an empty run
    assert decide([policy(allow("*"))], facts("anything:AtAll")) is True


def test_resource_patterns() -> None:
    p = [policy(allow("ram:*", "acs:ram:*:*:user/dev-*"))]
    assert decide(p, facts("ram:GetUser", USER + "dev-1")) is True
    assert decide(p, facts("ram:GetUser", USER + "DEV-2")) is True
    assert decide(p, facts("ram:GetUser", USER + "ops-1")) is None
    # An account-wide call (ListUsers) names the literal resource `user/*` or `*`: not covered by dev-*.
    assert decide(p, facts("ram:ListUsers", USER + "*")) is None
    assert decide(p, facts("ram:ListUsers", f"acs:ram:*:{ACCOUNT}:*")) is None
    other_account = [policy(allow("ram:*", "acs:ram:*:999:user/*"))]
    assert decide(other_account, facts("ram:GetUser")) is None


def test_explicit_deny_wins_and_not_elements() -> None:
    admin = policy(allow("*"), name="AdministratorAccess")
    assert decide([admin, policy(deny("ram:DeleteUser", "acs:ram:*:*:user/dev-*"))], facts("ram:DeleteUser")) is False
    assert (
        decide([admin, policy(deny("ram:DeleteUser", "acs:ram:*:*:user/dev-*"))], facts("ram:DeleteUser", USER + "ops"))
        is True
    )
    # NotAction: everything but RAM; NotResource: everything but the admin user.
    not_ram = [policy({"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"})]
    assert decide(not_ram, facts("actiontrail:LookupEvents")) is True and decide(not_ram, facts("ram:GetUser")) is None
    guard = [admin, policy({"Effect": "Deny", "Action": "ram:*", "NotResource": "acs:ram:*:*:user/admin"})]
    assert decide(guard, facts("ram:GetUser", USER + "admin")) is True
    assert decide(guard, facts("ram:GetUser", USER + "bob")) is False


def test_every_resource_of_a_call_must_be_allowed() -> None:
    policy_arn, user_arn = f"acs:ram:*:{ACCOUNT}:policy/ReadOnly", USER + "dev-1"
    both = [policy(allow("ram:AttachPolicyToUser", ["acs:ram:*:*:policy/*", "acs:ram:*:*:user/dev-*"]))]
    assert decide(both, facts("ram:AttachPolicyToUser", policy_arn, user_arn)) is True
    only_users = [policy(allow("ram:AttachPolicyToUser", "acs:ram:*:*:user/*"))]
    assert decide(only_users, facts("ram:AttachPolicyToUser", policy_arn, user_arn)) is None
    deny_policy = both + [policy(deny("ram:AttachPolicyToUser", "acs:ram:*:*:policy/ReadOnly"))]
    verdict = explain(deny_policy, facts("ram:AttachPolicyToUser", policy_arn, user_arn))
    assert verdict.effect == "Deny" and verdict.resource == policy_arn and verdict.matched[0][1].effect == "Deny"


def cond(operator: str, key: str, value: Any) -> list[CompiledPolicy]:
    return [policy(allow(Condition={operator: {key: value}}))]


@pytest.mark.parametrize(
    "operator, key, value, context, expected",
    [
        ("StringEquals", "ram:Team", "dev", {"ram:team": "dev"}, True),
        ("StringEquals", "ram:Team", "dev", {"ram:team": "Dev"}, None),
        ("StringEquals", "ram:Team", ["ops", "dev"], {"ram:team": "dev"}, True),  # any value matches
        ("StringEquals", "ram:Team", "dev", {}, None),  # an absent key never equals
        ("StringNotEquals", "ram:Team", "dev", {"ram:team": "ops"}, True),
        ("StringNotEquals", "ram:Team", ["ops", "dev"], {"ram:team": "ops"}, None),
        ("StringNotEquals", "ram:Team", "dev", {}, True),  # negated operators hold for an absent key
        ("StringEqualsIgnoreCase", "ram:Team", "DEV", {"ram:team": "dev"}, True),
        ("StringNotEqualsIgnoreCase", "ram:Team", "DEV", {"ram:team": "dev"}, None),
        ("StringLike", "ram:Team", "d?v-*", {"ram:team": "dev-east"}, True),
        ("StringLike", "ram:Team", "d?v-*", {"ram:team": "Dev-east"}, None),
        ("StringNotLike", "ram:Team", "dev-*", {"ram:team": "ops"}, True),
        ("IpAddress", "acs:SourceIp", "127.0.0.0/8", {}, True),
        ("IpAddress", "acs:SourceIp", ["10.0.0.0/8", "127.0.0.1"], {}, True),
        ("IpAddress", "acs:SourceIp", "10.0.0.0/8", {}, None),
        ("IpAddress", "acs:SourceIp", "127.0.0.1", {"acs:sourceip": "::ffff:127.0.0.1"}, True),
        ("IpAddress", "acs:SourceIp", "2001:db8::/32", {"acs:sourceip": "2001:db8::5"}, True),
        ("IpAddress", "acs:SourceIp", "127.0.0.1", {"acs:sourceip": "not-an-ip"}, None),
        ("NotIpAddress", "acs:SourceIp", "10.0.0.0/8", {}, True),
        ("NotIpAddress", "acs:SourceIp", "127.0.0.1/32", {}, None),
        ("Bool", "acs:MFAPresent", True, {}, None),
        ("Bool", "acs:MFAPresent", "true", {"acs:mfapresent": "true"}, True),
        ("Bool", "acs:SecureTransport", "false", {}, True),
        ("Bool", "ACS:mfapresent", "false", {}, True),  # condition keys compare case-insensitively
        ("DateLessThan", "acs:CurrentTime", "2026-06-01T20:00:01+08:00", {}, True),
        ("DateLessThan", "acs:CurrentTime", "2026-06-01T20:00:00+08:00", {}, None),
        ("DateLessThanEquals", "acs:CurrentTime", "2026-06-01T12:00:00Z", {}, True),
        ("DateGreaterThan", "acs:CurrentTime", "2026-01-01", {}, True),
        ("DateGreaterThanEquals", "acs:CurrentTime", "2027-01-01T00:00:00Z", {}, None),
        ("DateEquals", "acs:CurrentTime", "2026-06-01T12:00:00Z", {}, True),
        ("DateNotEquals", "acs:CurrentTime", "2026-06-01T12:00:00Z", {}, None),
        ("NumericLessThan", "ram:N", 10, {"ram:n": "9.5"}, True),
        ("NumericLessThanEquals", "ram:N", "10", {"ram:n": "10"}, True),
        ("NumericGreaterThan", "ram:N", 10, {"ram:n": "10"}, None),
        ("NumericGreaterThanEquals", "ram:N", 10, {"ram:n": "10"}, True),
        ("NumericEquals", "ram:N", [1, 2], {"ram:n": "2"}, True),
        ("NumericNotEquals", "ram:N", 2, {"ram:n": "2"}, None),
        ("NumericEquals", "ram:N", 2, {"ram:n": "two"}, None),
    ],
)
def test_condition_operators(
    operator: str, key: str, value: Any, context: dict[str, str], expected: bool | None
) -> None:
    call = Facts("ram:GetUser", (USER + "dev-1",), {**CTX, **context})
    assert decide(cond(operator, key, value), call) is expected


def test_conditions_combine_with_and_across_operators_and_keys() -> None:
    both = [policy(allow(Condition={"IpAddress": {"acs:SourceIp": "127.0.0.1"}, "Bool": {"acs:MFAPresent": "true"}}))]
    assert decide(both, facts("ram:GetUser")) is None
    assert decide(both, facts("ram:GetUser", acs_mfapresent="true")) is True
    keys = [policy(allow(Condition={"StringEquals": {"ram:A": "1", "ram:B": "2"}}))]
    assert decide(keys, Facts("ram:X", ("*",), {"ram:a": "1"})) is None
    assert decide(keys, Facts("ram:X", ("*",), {"ram:a": "1", "ram:b": "2"})) is True


def test_system_policies() -> None:
    assert set(system.POLICIES) == {
        "AdministratorAccess",
        "AliyunRAMFullAccess",
        "AliyunRAMReadOnlyAccess",
        "AliyunActionTrailFullAccess",
        "AliyunActionTrailReadOnlyAccess",
    }
    read = [system.POLICIES["AliyunRAMReadOnlyAccess"].compiled]
    assert decide(read, facts("ram:ListUsers")) is True and decide(read, facts("ram:GetPolicy")) is True
    assert decide(read, facts("ram:CreateUser")) is None and decide(read, facts("actiontrail:LookupEvents")) is None
    trail = [system.POLICIES["AliyunActionTrailReadOnlyAccess"].compiled]
    assert (
        decide(trail, facts("actiontrail:LookupEvents")) is True
        and decide(trail, facts("actiontrail:DescribeTrails")) is True
    )
    assert decide(trail, facts("actiontrail:CreateTrail")) is None
    assert decide([system.POLICIES["AliyunActionTrailFullAccess"].compiled], facts("actiontrail:CreateTrail")) is True
    assert decide([system.POLICIES["AliyunRAMFullAccess"].compiled], facts("ram:DeleteUser")) is True
    assert decide([system.POLICIES["AdministratorAccess"].compiled], facts("actiontrail:DeleteTrail")) is True
    assert system.find("administratoraccess") is system.POLICIES["AdministratorAccess"]
    assert json.loads(system.POLICIES["AliyunRAMReadOnlyAccess"].document)["Statement"][0]["Action"] == [
        "ram:Get*",
        "ram:List*",
    ]


def test_cache_compiles_once_and_evicts_least_recent() -> None:
    cache = LruCache(size=2)
    built: list[str] = []

    def build(name: str) -> CompiledPolicy:
        built.append(name)
        return policy(allow(), name=name)

    a = cache.get_or_compute("a", lambda: build("a"))
    assert cache.get_or_compute("a", lambda: build("a")) is a and built == ["a"]
    cache.get_or_compute("b", lambda: build("b"))
    cache.get("a")  # a is now the most recent
    cache.get_or_compute("c", lambda: build("c"))
    assert cache.get("b") is None and cache.get("a") is a and cache.get("c") is not None


def _action(service: Any, name: str, arn: str) -> Action:
    return Action(
        name=name,
        service=service,
        rw="Read",
        handler=lambda c, p: {},
        params=(),
        resource_type="",
        resource_param=None,
        secrets=frozenset(),
        self_service=False,
        resources=(),
        sensitive=False,
        arn=arn,
        extension=False,
        doc="",
    )


def test_resource_arns_from_templates() -> None:
    principal = SimpleNamespace(user_name="me@t.onaliyun.com", mfa_authenticated=True, account_id=ACCOUNT)
    ctx: Any = SimpleNamespace(account_id=ACCOUNT, principal=principal, source_ip="10.1.2.3", scheme="https", now_ms=0)
    arns = resource_arns(
        ctx, _action(IMS, "GetUser", "user/{UserPrincipalName}"), {"UserPrincipalName": "Dev-1@t.onaliyun.com"}
    )
    assert arns == (f"acs:ram:*:{ACCOUNT}:user/Dev-1",)
    # Without a user named, the call is about the caller itself.
    assert resource_arns(ctx, _action(IMS, "GetUser", "user/{UserPrincipalName}"), {}) == (
        f"acs:ram:*:{ACCOUNT}:user/me",
    )
    assert resource_arns(ctx, _action(IMS, "ListUsers", "*"), {}) == (f"acs:ram:*:{ACCOUNT}:*",)
    assert resource_arns(ctx, _action(ACTIONTRAIL, "LookupEvents", "*"), {}) == (f"acs:actiontrail:*:{ACCOUNT}:*",)
    assert resource_arns(
        ctx,
        _action(RAM, "AttachPolicyToUser", "policy/{PolicyName},user/{UserName}"),
        {"PolicyName": "P1", "UserName": "dev-1"},
    ) == (f"acs:ram:*:{ACCOUNT}:policy/P1", f"acs:ram:*:{ACCOUNT}:user/dev-1")
    assert context(ctx) == {
        "acs:sourceip": "10.1.2.3",
        "acs:mfapresent": "true",
        "acs:securetransport": "true",
        "acs:currenttime": "1970-01-01T00:00:00Z",
    }
