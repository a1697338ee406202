"""System policies: defined by the service, present in every account, attachable but never changed or
deleted. The documents are Alibaba Cloud's, limited to the services OpenIMS implements (RAM and ActionTrail)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from openims.authz.document import parse
from openims.authz.evaluate import CompiledPolicy, compile_document

SYSTEM, CUSTOM = "System", "Custom"
VERSION = "v1"
# System policies predate every account; RAM reports them with their original creation date.
CREATED = "2015-04-28T16:00:00Z"


@dataclass(frozen=True)
class SystemPolicy:
    name: str
    description: str
    document: str
    compiled: CompiledPolicy


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)}, indent=2)


def _allow(actions: str | list[str]) -> dict[str, object]:
    return {"Effect": "Allow", "Action": actions, "Resource": "*"}


_DEFS = (
    ("AdministratorAccess", "Provides full access to Alibaba Cloud services and resources.", _doc(_allow("*"))),
    ("AliyunRAMFullAccess", "Provides full access to Resource Access Management (RAM).", _doc(_allow("ram:*"))),
    (
        "AliyunRAMReadOnlyAccess",
        "Provides read-only access to Resource Access Management (RAM).",
        _doc(_allow(["ram:Get*", "ram:List*"])),
    ),
    ("AliyunActionTrailFullAccess", "Provides full access to ActionTrail.", _doc(_allow("actiontrail:*"))),
    (
        "AliyunActionTrailReadOnlyAccess",
        "Provides read-only access to ActionTrail.",
        _doc(_allow(["actiontrail:Get*", "actiontrail:Describe*", "actiontrail:LookupEvents"])),
    ),
)

POLICIES: dict[str, SystemPolicy] = {
    name: SystemPolicy(name, description, text, compile_document(parse(text), SYSTEM, name, VERSION))
    for name, description, text in _DEFS
}
_BY_LOWER = {name.lower(): policy for name, policy in POLICIES.items()}


def find(name: str) -> SystemPolicy | None:
    """The system policy of that name (names compare case-insensitively, as custom ones do)."""
    return _BY_LOWER.get(name.lower())
