"""`openims events history TYPE NAME`: every recorded change to one resource, oldest first, with who made it and
the old and new value of each attribute (docs/resources.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from openims.cli.tables import print_table
from openims.config import ConfigError, Settings
from openims.runtime import open_runtime

# The short names the command takes for the resource types whose changes are recorded.
TYPES = {
    "user": "ACS::RAM::User",
    "group": "ACS::RAM::Group",
    "policy": "ACS::RAM::Policy",
    "access-key": "ACS::RAM::AccessKey",
    "mfa-device": "ACS::RAM::VirtualMFADevice",
    "oidc-provider": "ACS::RAM::OIDCProvider",
    "saml-provider": "ACS::RAM::SAMLProvider",
    "application": "ACS::RAM::Application",
    "trail": "ACS::ActionTrail::Trail",
}


def add_event_commands(events: Any) -> None:
    """Add `history` to the `events` subparsers."""
    history = events.add_parser("history", help="every recorded change to one resource, oldest first")
    history.add_argument("type", help=f"{', '.join(TYPES)}, or a resource type such as ACS::RAM::User")
    history.add_argument("name", help="its name: a UserPrincipalName (or short name), group, policy, key ID...")
    history.add_argument("--account", help="account ID (default: the only account, or the first one created)")
    history.add_argument("--json", action="store_true", help="one JSON change per line")
    history.set_defaults(func=cmd_history)


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    """DescribeResourceLifeCycleEvents with ResourceName, as the operator (an audited call, as every CLI read)."""
    from openims.cli import operator  # the action table: loaded only by the commands that run actions
    from openims.errors import ApiError

    rtype = TYPES.get(args.type.lower(), args.type)
    if "::" not in rtype:
        raise ConfigError(f"unknown resource type {args.type!r}: use one of {', '.join(TYPES)} or ACS::...")
    rt = open_runtime(settings)
    try:
        account = operator.account_id(rt, args.account)
        answer = operator.call(
            rt, account, "DescribeResourceLifeCycleEvents", {"ResourceType": rtype, "ResourceName": args.name}
        )
    except ApiError as exc:
        raise ConfigError(f"{exc.code}: {exc.message}") from None
    finally:
        rt.close()
    found = json.loads(answer["Data"])
    if args.json:
        for change in found:
            print(json.dumps(change, ensure_ascii=False))
        return 0
    rows = [
        {
            "Time": c["eventTime"],
            "Event": c["eventName"],
            "By": c["userName"],
            "Change": c["change"],
            "Attribute": a["attribute"],
            "Old": "(secret)" if a.get("changed") else _text(a.get("old")),
            "New": "(changed)" if a.get("changed") else _text(a.get("new")),
        }
        for c in found
        for a in c["attributes"]
    ]
    print_table(rows, ["Time", "Event", "By", "Change", "Attribute", "Old", "New"])
    return 0


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)
