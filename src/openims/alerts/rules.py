"""A rule as the evaluator uses it: its condition compiled once into predicates, cached per account.

The condition speaks LookupEvents' language (openims.audit.lookup.predicate reads each LookupAttribute, so a
rule matches exactly the events LookupEvents finds with the same attributes): keys are ANDed, and a key given
several times matches any of its values. A rule may instead name an insight type, and may add a named check
for what attributes cannot say (openims.alerts.checks).

The cache follows the trails' outbox: each process keeps the account's enabled rules with the random
generation token they were read at, and compares it with `alert_generations` (one primary-key read) at every
event; every rule change writes a new token in its own transaction, so another process's change is seen by
the first event after it commits.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from openims.audit.lookup import ATTRIBUTES, Predicate, predicate
from openims.store.prepared import Prepared
from openims.store.tables.alerts import alert_generations, alert_rules
from openims.store.upsert import dialect_insert

INSIGHT_EVENT_TYPE = "ActionTrailInsight"
# Threshold rules count per value of one of these (or over the whole account).
GROUP_BY = ("SourceIpAddress", "User", "EventAccessKeyId", "EventName")


@dataclass(frozen=True)
class Rule:
    """An enabled rule of an account, ready to test events."""

    rule_id: str
    name: str
    preset: str
    severity: str
    attributes: tuple[tuple[str, str], ...]
    # The attributes by key: each key's predicates are alternatives, the keys are ANDed.
    groups: tuple[tuple[Predicate, ...], ...]
    check: str
    insight_type: str
    insight_state: str
    threshold: int
    window_ms: int
    group_by: str

    def matches(self, event: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
        """Whether the event (its record and its indexed column values) meets the condition; the named check
        and the threshold come after, in the evaluator."""
        is_insight = event.get("eventType") == INSIGHT_EVENT_TYPE
        if self.insight_type:
            if not is_insight or self.insight_type not in ("*", event.get("eventName")):
                return False
            state = str((event.get("insightDetails") or {}).get("state", ""))
            return self.insight_state in ("", "All", state)
        if is_insight:
            return False  # insight events answer LookupInsightEvents, not LookupEvents
        return all(any(p.test(row) for p in group) for group in self.groups)

    @property
    def counts(self) -> bool:
        return self.threshold > 1


def compile_attributes(attributes: tuple[tuple[str, str], ...]) -> tuple[tuple[Predicate, ...], ...]:
    """The predicates of a rule's attributes grouped by key (raises the LookupAttribute ApiErrors)."""
    by_key: dict[str, list[Predicate]] = {}
    for key, value in attributes:
        by_key.setdefault(key, []).append(predicate(key, value))
    return tuple(tuple(group) for group in by_key.values())


def group_column(group_by: str) -> Any:
    return ATTRIBUTES[group_by] if group_by else None


def from_row(row: Any) -> Rule:
    attributes = tuple((str(k), str(v)) for k, v in json.loads(row.conditions))
    return Rule(
        rule_id=row.id,
        name=row.name,
        preset=row.preset,
        severity=row.severity,
        attributes=attributes,
        groups=compile_attributes(attributes),
        check=row.check_name,
        insight_type=row.insight_type,
        insight_state=row.insight_state,
        threshold=row.threshold,
        window_ms=row.window_s * 1000,
        group_by=row.group_by,
    )


_cache: dict[str, tuple[int, tuple[Rule, ...]]] = {}
_GENERATION = Prepared(
    select(alert_generations.c.generation).where(alert_generations.c.account_id == bindparam("account_id"))
)


def new_generation(conn: Connection, account_id: str) -> None:
    """Record that the account's rules changed (call in the changing transaction)."""
    token = secrets.randbits(62)
    ins = dialect_insert(conn, alert_generations).values(account_id=account_id, generation=token)
    conn.execute(ins.on_conflict_do_update(index_elements=[alert_generations.c.account_id], set_={"generation": token}))


def enabled_rules(conn: Connection, account_id: str) -> tuple[Rule, ...]:
    """The account's enabled rules, from the cache while its generation is current."""
    generation = _GENERATION.scalar(conn, {"account_id": account_id})
    if generation is None:
        return ()
    cached = _cache.get(account_id)
    if cached is not None and cached[0] == generation:
        return cached[1]
    rows = conn.execute(
        select(alert_rules).where(alert_rules.c.account_id == account_id, alert_rules.c.enabled.is_(True))
    ).all()
    found = tuple(from_row(r) for r in rows)
    _cache[account_id] = (generation, found)
    return found
