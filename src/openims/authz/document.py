"""The RAM policy language (Version "1"): parse a document and validate it, saying exactly what is wrong.

A document is `{"Version": "1", "Statement": [...]}`; each statement has `Effect` (Allow or Deny), one of
`Action`/`NotAction`, one of `Resource`/`NotResource`, and an optional `Condition` block.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from openims import clock, quotas
from openims.errors import ApiError

MALFORMED = "MalformedPolicyDocument"
STRING_OPS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)
NUMERIC_OPS = (
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
)
DATE_OPS = (
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
)
BOOL_OPS = ("Bool",)
IP_OPS = ("IpAddress", "NotIpAddress")
OPERATORS = STRING_OPS + NUMERIC_OPS + DATE_OPS + BOOL_OPS + IP_OPS
# Negated operators hold when the key is absent from the request, as in RAM (and IAM).
NEGATED = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
    }
)

_ACTION = re.compile(r"\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]+")
_RESOURCE = re.compile(r"\*|acs:[^:\s]*:[^:\s]*:[^:\s]*:\S+")
_KEY = re.compile(r"[A-Za-z0-9_-]+:[A-Za-z0-9_./*-]+")
_TOP = ("Version", "Statement")
_STATEMENT = ("Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # as written; compared case-insensitively
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Document:
    version: str
    statements: tuple[Statement, ...]


def malformed(where: str, why: str) -> ApiError:
    return ApiError(MALFORMED, f"The policy document is malformed: {where} {why}.")


def check_size(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > quotas.POLICY_SIZE:
        raise ApiError(
            "LimitExceeded.Policy.Size",
            f"The policy document is {size} bytes; a policy document can be at most {quotas.POLICY_SIZE} bytes.",
        )


def parse(text: str) -> Document:
    """The validated document; raises MalformedPolicyDocument (or LimitExceeded.Policy.Size) naming the fault."""
    check_size(text)
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as dup:
        raise malformed(f"the element {dup.args[0]!r}", "appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise malformed(f"the JSON at line {exc.lineno} column {exc.colno}", f"is invalid ({exc.msg})") from None
    except (ValueError, RecursionError):  # nested too deeply, or a number too long to convert
        raise malformed("the JSON", "is nested too deeply or holds a number too long to read") from None
    if not isinstance(raw, dict):
        raise malformed("the document", "must be a JSON object with Version and Statement")
    _only(raw, _TOP, "the document")
    if "Version" not in raw:
        raise malformed("the document", 'has no Version: it must be "1"')
    if raw["Version"] != "1":
        raise malformed("Version", f'is {json.dumps(raw["Version"])}; the only policy language version is "1"')
    if "Statement" not in raw:
        raise malformed("the document", "has no Statement")
    items = raw["Statement"]
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise malformed("Statement", "must be a non-empty list of statement objects")
    return Document("1", tuple(_statement(item, f"Statement[{i}]") for i, item in enumerate(items)))


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _only(obj: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in allowed:
            hint = " (Principal belongs only in a role's trust policy)" if key == "Principal" else ""
            raise malformed(f"{where}.{key}", f"is not a policy element{hint}; allowed here: {', '.join(allowed)}")


def _statement(item: Any, where: str) -> Statement:
    if not isinstance(item, dict):
        raise malformed(where, "must be an object")
    _only(item, _STATEMENT, where)
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        shown = "missing" if effect is None else f"{json.dumps(effect)}"
        raise malformed(f"{where}.Effect", f'is {shown}; it must be "Allow" or "Deny"')
    actions, not_action = _one_of(
        item,
        "Action",
        "NotAction",
        where,
        _ACTION,
        "is not * or <service>:<action> (letters, digits, hyphens, underscores, * and ?)",
    )
    resources, not_resource = _one_of(
        item,
        "Resource",
        "NotResource",
        where,
        _RESOURCE,
        "is not * or an ARN acs:<service>:<region>:<account>:<resource> (no spaces)",
    )
    conditions = _conditions(item["Condition"], f"{where}.Condition") if "Condition" in item else ()
    return Statement(effect, actions, not_action, resources, not_resource, conditions)


def _one_of(
    item: dict[str, Any], name: str, negated: str, where: str, rule: re.Pattern[str], rule_doc: str
) -> tuple[tuple[str, ...], bool]:
    if (name in item) == (negated in item):
        raise malformed(where, f"must have exactly one of {name} and {negated}")
    key = name if name in item else negated
    value = item[key]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise malformed(f"{where}.{key}", "must be a string or a non-empty list of strings")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise malformed(f"{where}.{key}[{i}]", f"is {json.dumps(v)}, not a string")
        if not rule.fullmatch(v):
            raise malformed(f"{where}.{key}[{i}] {json.dumps(v)}", rule_doc)
    return tuple(values), key == negated


def _conditions(block: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(block, dict) or not block:
        raise malformed(where, "must be a non-empty object of {operator: {key: value(s)}}")
    out = []
    for operator, keys in block.items():
        if operator not in OPERATORS:
            raise malformed(f"{where}.{operator}", f"is not a condition operator; use one of {', '.join(OPERATORS)}")
        if not isinstance(keys, dict) or not keys:
            raise malformed(f"{where}.{operator}", "must be a non-empty object of {key: value or [values]}")
        for key, value in keys.items():
            at = f"{where}.{operator}.{key}"
            if not _KEY.fullmatch(key):
                raise malformed(at, "is not a condition key of the form <service>:<name>, such as acs:SourceIp")
            values = value if isinstance(value, list) else [value]
            if not values:
                raise malformed(at, "has no values")
            out.append(Condition(operator, key, tuple(_value(operator, v, f"{at}[{i}]") for i, v in enumerate(values))))
    return tuple(out)


def _value(operator: str, value: Any, where: str) -> str:
    """The value as a string, after checking it suits the operator."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        raise malformed(where, f"is {json.dumps(value)}; a condition value must be a string, number or boolean")
    if operator in NUMERIC_OPS and parse_number(text) is None:
        raise malformed(where, f"is {json.dumps(value)}, not a number")
    if operator in DATE_OPS and parse_date(text) is None:
        raise malformed(
            where,
            f"is {json.dumps(value)}, not a date: use ISO 8601, such as 2026-01-01T00:00:00Z or "
            "2026-01-01T08:00:00+08:00",
        )
    if operator in BOOL_OPS and text.lower() not in ("true", "false"):
        raise malformed(where, f"is {json.dumps(value)}; Bool takes true or false")
    if operator in IP_OPS and parse_network(text) is None:
        raise malformed(where, f"is {json.dumps(value)}, not an IP address or CIDR block such as 192.168.0.0/16")
    return text


def parse_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_date(text: str) -> int | None:
    """Milliseconds since the epoch, or None; a time without an offset is UTC."""
    try:
        return clock.parse_iso(text)
    except ValueError:
        return None


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
