"""ActionTrail's LookupEvents over the account's own event history."""

from __future__ import annotations

from typing import Any

from openims import clock, jsontext
from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, action
from openims.audit.lookup import Query, search, window
from openims.params import Int, ObjList, Str

ATTRIBUTE = ObjList("LookupAttribute", fields=(Str("Key", max_len=64), Str("Value", max_len=512)), max_items=10)


@action(
    "LookupEvents",
    service=ACTIONTRAIL,
    arn="*",
    params=(
        Str("StartTime", max_len=64),
        Str("EndTime", max_len=64),
        ATTRIBUTE,
        Int("MaxResults", min=0, max=50, default=20),
        Str("NextToken", max_len=1024),
        Str("Direction", choices=("FORWARD", "BACKWARD"), default="BACKWARD"),
    ),
)
def lookup_events(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the account's events of the last 90 days, newest first by default. Keys: ActionTrail's (EventName,
    EventRW, EventId, EventAccessKeyId, ServiceName, User, PrincipalId, ResourceType and ResourceName, which match
    any resource of the event, SensitiveAction, EventType, RoleName) and OpenIMS's (ErrorCode, SourceIpAddress,
    MFAUsed, Result). Several LookupAttribute conditions are ANDed; EventName and ErrorCode accept a trailing `*`,
    and ErrorCode `*` means any failure. MFAUsed (`true` or `false`) selects events whose caller had passed MFA;
    Result (`Success` or `Failure`) selects calls that succeeded or failed; User takes a RAM user's short name
    too. Insight events are left out unless EventCategory is `Insight` (LookupInsightEvents is their own
    query). See docs/resources.md."""
    start, end = window(p["StartTime"], p["EndTime"], ctx.now_ms)
    attributes = tuple((a["Key"] or "", a["Value"] or "") for a in p["LookupAttribute"])
    query = Query(
        ctx.account_id,
        start,
        end,
        attributes,
        forward=p["Direction"] == "FORWARD",
        limit=p["MaxResults"] or 20,
        span=(p["StartTime"] or "", p["EndTime"] or ""),
    )
    found, token = search(ctx.conn, ctx.runtime.master_key, query, p["NextToken"])
    # An EndTime given to the millisecond is answered so, so that passing it back selects the same events.
    exact_end = "." in (p["EndTime"] or "")
    out: dict[str, Any] = {
        # As stored: written into the response without being parsed and written again.
        "Events": [jsontext.Stored(body) for body in found],
        "StartTime": clock.iso(start),
        "EndTime": clock.iso_ms(end) if exact_end else clock.iso(end),
    }
    if token:
        out["NextToken"] = token
    return out
