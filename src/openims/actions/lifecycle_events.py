"""ActionTrail's DescribeResourceLifeCycleEvents: which events create, change and delete each resource type,
and (an OpenIMS extension, with ResourceName) one resource's recorded changes, with old and new values."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, action
from openims.actions.users import USER
from openims.errors import missing
from openims.lifecycle import catalogue, history
from openims.lifecycle.snapshots import user_upn
from openims.params import Int, Str

MAX_CHANGES = 1000


@action(
    "DescribeResourceLifeCycleEvents",
    service=ACTIONTRAIL,
    arn="*",
    params=(
        Str("ServiceName", max_len=64),
        Str("ResourceType", max_len=64),
        Str("ResourceName", max_len=255),
        Int("MaxResults", min=1, max=MAX_CHANGES, default=MAX_CHANGES),
    ),
)
def describe_resource_life_cycle_events(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """As ActionTrail: `Data` is a JSON string listing, per service (`Ims`, `Ram`, `Actiontrail`) and resource
    type, the events that create, update and delete such a resource. OpenIMS extension: with `ResourceType` and
    `ResourceName` (e.g. `ACS::RAM::User` and a UserPrincipalName), `Data` is that resource's history instead:
    a JSON array of its changes, oldest first (at most MaxResults, default 1000), each with the event
    (eventTime, eventId, eventName), who made it (userName, userType, sourceIpAddress), the kind of change
    (Create, Update, Delete) and its attributes with their old and new values; a secret's attribute says only
    `"changed": true`."""
    if p["ResourceName"]:
        if not p["ResourceType"]:
            raise missing("ResourceType")
        name = p["ResourceName"]
        if p["ResourceType"] == USER:
            # A user by its short name too, as the console and RAM name users.
            name = user_upn(ctx.conn, ctx.account_id, name)
        found = history.changes(ctx.conn, ctx.account_id, p["ResourceType"], name)
        data: Any = list(islice(found, p["MaxResults"]))
    else:
        data = catalogue.catalogue(
            ctx.actions.all() if ctx.actions else [], p["ServiceName"] or "", p["ResourceType"] or ""
        )
    return {"Data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}
