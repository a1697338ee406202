"""Opening and closing insights: each opens with a Start insight event and closes with an End event, both
recorded through the one builder for events written outside the API (audit/outside_api.insight_event), so they
are in the event history, the tamper-evident log and the trails like every other event."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, update

from openims.audit import outside_api
from openims.principal import SYSTEM, Principal
from openims.runtime import Runtime
from openims.store.tables.insights import insight_events, insights

ATTRIBUTES = ("userName", "accessKeyId", "sourceIpAddress", "errorCode", "eventName")


@dataclass
class Finding:
    """A departure from the baseline, about to open an insight."""

    account_id: str
    insight_type: str
    insight_object: str
    at_ms: int
    # What the activity was (insightDetails: serviceName, eventName, sourceIpAddress, accessKeyId, userName,
    # reason, ...), and its statistics and attributions (insightContext).
    about: dict[str, str]
    statistics: dict[str, Any]
    attributions: list[dict[str, Any]]
    # Whom it is about (the key's or user's identity), None for an account-wide rate.
    principal: Principal | None = None
    # Rate insights: the counter it watches and the count that started it (it ends below that).
    metric: tuple[str, str] | None = None
    threshold: float = 0.0
    tally: dict[str, Counter[str]] = field(default_factory=dict)
    # IpInsight, AkInsight: what a later event must match to be more of the same unusual activity.
    match: dict[str, str] = field(default_factory=dict)


def count_into(counts: dict[str, Any], seen: dict[str, str]) -> None:
    """Add one activity (a dict of ATTRIBUTES) to per-attribute counts of values."""
    for name in ATTRIBUTES:
        if seen.get(name):
            values = counts.setdefault(name, Counter())
            values[seen[name]] = values.get(seen[name], 0) + 1


def tally(values: list[dict[str, str]]) -> dict[str, Counter[str]]:
    """Counts of each attribute's values over activities (each a dict of ATTRIBUTES)."""
    out: dict[str, Counter[str]] = {name: Counter() for name in ATTRIBUTES}
    for value in values:
        count_into(out, value)
    return out


def attributions(counts: dict[str, Counter[str]], windows: float) -> list[dict[str, Any]]:
    """insightContext.attributions: per attribute, its top values with their average per window during the
    insight (`insight`), as CloudTrail Insights gives them. `baseline` is left empty: the baseline is kept per
    counter, not per value (IpInsight fills it with the addresses the key or user did use)."""
    out = []
    for name in ATTRIBUTES:
        top = counts.get(name, Counter()).most_common(5)
        if top:
            out.append(
                {
                    "attribute": name,
                    "insight": [{"value": v, "average": round(n / max(windows, 1.0), 4)} for v, n in top],
                    "baseline": [],
                }
            )
    return out


def system(account_id: str) -> Principal:
    return Principal(account_id, SYSTEM, "", "")


def _details(
    state: str, finding_type: str, insight_object: str, about: dict[str, str], context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "state": state,
        "insightType": finding_type,
        "insightObject": insight_object,
        **about,
        "insightContext": context,
    }


def _index(
    conn: Connection,
    event: dict[str, Any],
    insight_id: str,
    finding_type: str,
    obj: str,
    about: dict[str, str],
    ms: int,
) -> None:
    conn.execute(
        insert(insight_events).values(
            event_id=event["eventId"],
            account_id=event["recipientAccountId"],
            event_ms=ms,
            insight_id=insight_id,
            insight_type=finding_type,
            insight_object=obj[:200],
            service_name=about.get("serviceName", "")[:32],
            event_name=about.get("eventName", "")[:64],
            source_ip=about.get("sourceIpAddress", "")[:64],
            access_key_id=about.get("accessKeyId", "")[:32],
        )
    )


def open_insight(rt: Runtime, conn: Connection, f: Finding) -> str:
    """Record the Start event and the open insight; returns the insight's ID (both events' sharedEventId)."""
    insight_id = str(uuid.uuid4()).upper()
    context = {"statistics": f.statistics, "attributions": f.attributions}
    details = _details("Start", f.insight_type, f.insight_object, f.about, context)
    event = outside_api.insight_event(
        rt,
        conn,
        f.principal or system(f.account_id),
        details,
        shared_event_id=insight_id,
        source_ip=f.about.get("sourceIpAddress", ""),
        event_ms=f.at_ms,
    )
    _index(conn, event, insight_id, f.insight_type, f.insight_object, f.about, f.at_ms)
    state = {
        "about": f.about,
        "principal": event["userIdentity"],
        "statistics": f.statistics,
        "metric": list(f.metric) if f.metric else None,
        "match": f.match,
        "threshold": f.threshold,
        "tally": {k: dict(v) for k, v in f.tally.items()},
        "count": sum(f.tally.get("eventName", Counter()).values()),
    }
    conn.execute(
        insert(insights).values(
            id=insight_id,
            account_id=f.account_id,
            insight_type=f.insight_type,
            insight_object=f.insight_object[:200],
            open=True,
            start_ms=f.at_ms,
            activity_ms=f.at_ms,
            details=json.dumps(state, separators=(",", ":")),
        )
    )
    return insight_id


def state_of(row: Any) -> dict[str, Any]:
    """The detector's state of an insight row: what its Start said, and the activity tallied since."""
    found: dict[str, Any] = json.loads(row.details)
    return found


def touch(conn: Connection, row: Any, state: dict[str, Any], at_ms: int, seen: list[dict[str, str]]) -> None:
    """The unusual activity went on until `at_ms` (`seen`: more such events, tallied for the End event)."""
    for one in seen:
        count_into(state["tally"], one)
    state["count"] = state.get("count", 0) + len(seen)
    conn.execute(
        update(insights)
        .where(insights.c.id == row.id)
        .values(activity_ms=max(row.activity_ms, at_ms), details=json.dumps(state, separators=(",", ":")))
    )


def close_insight(
    rt: Runtime,
    conn: Connection,
    row: Any,
    state: dict[str, Any],
    at_ms: int,
    statistics: dict[str, Any],
    attributions_: list[dict[str, Any]],
) -> None:
    """Record the End event (statistics over the whole insight) and close the insight."""
    about = state["about"]
    context = {"statistics": statistics, "attributions": attributions_}
    details = _details("End", row.insight_type, row.insight_object, about, context)
    identity = state.get("principal") or {}
    principal = (
        Principal(
            row.account_id,
            identity.get("type", SYSTEM),
            identity.get("principalId", ""),
            identity.get("userName", ""),
            identity.get("accessKeyId", ""),
        )
        if identity.get("type") != SYSTEM
        else system(row.account_id)
    )
    event = outside_api.insight_event(
        rt, conn, principal, details, shared_event_id=row.id, source_ip=about.get("sourceIpAddress", ""), event_ms=at_ms
    )
    _index(conn, event, row.id, row.insight_type, row.insight_object, about, at_ms)
    conn.execute(
        update(insights).where(insights.c.id == row.id).values(open=False, end_ms=at_ms, end_event_id=event["eventId"])
    )
