"""Compiled policy evaluation. A policy version is compiled once into regular expressions and condition
closures; deciding a call is then a few regex matches per statement.

Rules (as RAM): a statement applies when its action, resource and every condition match; an applying
Deny anywhere wins; otherwise an applying Allow allows; otherwise the call is implicitly denied. A call
that names several resources must be allowed on each of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from openims.authz.document import (
    BOOL_OPS,
    DATE_OPS,
    IP_OPS,
    NEGATED,
    NUMERIC_OPS,
    Condition,
    Document,
    Statement,
    parse_date,
    parse_network,
    parse_number,
)

ALLOW, DENY = "Allow", "Deny"
Check = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class Facts:
    """What a call is judged on: its RAM action, the full ARNs it touches, and the condition keys
    (lower-cased names, such as acs:sourceip) with their values."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, str]


@dataclass(frozen=True)
class CompiledStatement:
    index: int
    effect: str
    action: re.Pattern[str]
    not_action: bool
    resource: re.Pattern[str]
    not_resource: bool
    conditions: tuple[Check, ...]
    # The condition keys this statement reads, for diagnostics.
    keys: tuple[str, ...]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        if (self.action.fullmatch(action) is None) != self.not_action:
            return False
        if (self.resource.fullmatch(resource) is None) != self.not_resource:
            return False
        return all(check(context) for check in self.conditions)


@dataclass(frozen=True)
class CompiledPolicy:
    policy_type: str  # System or Custom
    name: str
    version: str
    denies: tuple[CompiledStatement, ...]
    allows: tuple[CompiledStatement, ...]


@dataclass
class Verdict:
    """The outcome: Allow, Deny (explicit) or "" (implicit deny), with the statements that decided it."""

    effect: str
    # (policy, statement) pairs that applied with the deciding effect.
    matched: list[tuple[CompiledPolicy, CompiledStatement]] = field(default_factory=list)
    resource: str = ""


def compile_document(doc: Document, policy_type: str, name: str, version: str) -> CompiledPolicy:
    statements = [_statement(i, s) for i, s in enumerate(doc.statements)]
    return CompiledPolicy(
        policy_type,
        name,
        version,
        denies=tuple(s for s in statements if s.effect == DENY),
        allows=tuple(s for s in statements if s.effect == ALLOW),
    )


def decide(policies: Sequence[CompiledPolicy], facts: Facts) -> bool | None:
    """False on an explicit deny, True when every resource is allowed, None when nothing allows it."""
    action, context = facts.action, facts.context
    for resource in facts.resources:
        for policy in policies:
            for s in policy.denies:
                if s.applies(action, resource, context):
                    return False
    for resource in facts.resources:
        if not any(s.applies(action, resource, context) for policy in policies for s in policy.allows):
            return None
    return True


def explain(policies: Sequence[CompiledPolicy], facts: Facts) -> Verdict:
    """Like `decide`, with the statements behind the verdict (used only to describe a denial)."""
    action, context = facts.action, facts.context
    for resource in facts.resources:
        denied = [(p, s) for p in policies for s in p.denies if s.applies(action, resource, context)]
        if denied:
            return Verdict(DENY, denied, resource)
    allowed: list[tuple[CompiledPolicy, CompiledStatement]] = []
    for resource in facts.resources:
        here = [(p, s) for p in policies for s in p.allows if s.applies(action, resource, context)]
        if not here:
            return Verdict("", [], resource)
        allowed += here
    return Verdict(ALLOW, allowed, facts.resources[0] if facts.resources else "")


def wildcard(patterns: Sequence[str], ignore_case: bool = True) -> re.Pattern[str]:
    """One regex matching any of `patterns`, where `*` is any run of characters and `?` any one."""
    parts = ["".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p) for p in patterns]
    return re.compile("(?:" + "|".join(parts) + ")", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _statement(index: int, s: Statement) -> CompiledStatement:
    return CompiledStatement(
        index=index,
        effect=s.effect,
        action=wildcard(s.actions),
        not_action=s.not_action,
        resource=wildcard(s.resources),
        not_resource=s.not_resource,
        conditions=tuple(_condition(c) for c in s.conditions),
        keys=tuple(dict.fromkeys(c.key.lower() for c in s.conditions)),
    )


def _condition(c: Condition) -> Check:
    key, op = c.key.lower(), c.operator
    positive = _positive(op, c.values)
    if op in NEGATED:
        return lambda ctx: (value := ctx.get(key)) is None or not positive(value)
    return lambda ctx: (value := ctx.get(key)) is not None and positive(value)


def _positive(op: str, values: tuple[str, ...]) -> Callable[[str], bool]:
    """The un-negated test of one request value against the statement's values (any may match)."""
    base = op.replace("Not", "", 1) if op in NEGATED else op
    if base == "StringEquals":
        wanted = frozenset(values)
        return lambda v: v in wanted
    if base == "StringEqualsIgnoreCase":
        lowered = frozenset(x.lower() for x in values)
        return lambda v: v.lower() in lowered
    if base == "StringLike":
        rx = wildcard(values, ignore_case=False)
        return lambda v: rx.fullmatch(v) is not None
    if op in BOOL_OPS:
        flags = frozenset(x.lower() for x in values)
        return lambda v: v.lower() in flags
    if op in IP_OPS:
        networks = tuple(n for n in (parse_network(x) for x in values) if n is not None)
        return lambda v: _in_networks(v, networks)
    if op in NUMERIC_OPS:
        return _compare(base[len("Numeric") :], tuple(parse_number(x) or 0.0 for x in values), parse_number)
    if op in DATE_OPS:
        return _compare(base[len("Date") :], tuple(parse_date(x) or 0 for x in values), parse_date)
    raise ValueError(f"unknown condition operator {op}")  # document.parse rejects these first


def _compare(
    how: str, bounds: tuple[float, ...], convert: Callable[[str], float | int | None]
) -> Callable[[str], bool]:
    test: Callable[[float, float], bool] = {
        "Equals": lambda a, b: a == b,
        "LessThan": lambda a, b: a < b,
        "LessThanEquals": lambda a, b: a <= b,
        "GreaterThan": lambda a, b: a > b,
        "GreaterThanEquals": lambda a, b: a >= b,
    }[how]

    def check(value: str) -> bool:
        number = convert(value)
        return number is not None and any(test(number, b) for b in bounds)

    return check


def _in_networks(value: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)
