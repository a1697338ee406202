"""Event history queries (LookupEvents, the CLI and the console): indexed filters, keyset pages, and
NextTokens that are signed and bound to the account and the filters, so they cannot be forged or reused."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, false, func, or_, select, true, union_all

from openims import clock
from openims.crypto import MasterKey
from openims.errors import ApiError
from openims.store.schema import events
from openims.store.tables.event_resources import event_resources

# Insight events are filed under this event_rw (their eventCategory, see openims.insights): LookupEvents leaves
# them out unless asked with EventCategory=Insight (LookupInsightEvents is their own query).
INSIGHT = "Insight"
# LookupAttribute keys -> indexed column. ErrorCode, MFAUsed, Result and EventCategory are OpenIMS extensions.
ATTRIBUTES = {
    "EventName": events.c.event_name,
    "EventRW": events.c.event_rw,
    "EventId": events.c.event_id,
    "EventAccessKeyId": events.c.access_key_id,
    # Any resource of the event (event_resources), not only the first.
    "ResourceType": event_resources.c.resource_type,
    "ResourceName": event_resources.c.resource_name,
    "ServiceName": events.c.service_name,
    "User": events.c.user_name,
    "PrincipalId": events.c.principal_id,
    "EventType": events.c.event_type,
    "SensitiveAction": events.c.sensitive,
    "ErrorCode": events.c.error_code,
    "SourceIpAddress": events.c.source_ip,
    "MFAUsed": events.c.mfa_used,
    "Result": events.c.error_code,
    # ActionTrail's: IMS events have no role session, so a role name matches none of them.
    "RoleName": events.c.user_name,
    "EventCategory": events.c.event_rw,
}
RESOURCE_KEYS = ("ResourceType", "ResourceName")
# The key of an event's (type, name) resources in the values `Predicate.test` reads.
RESOURCES = "resources"
WILDCARD_KEYS = ("EventName", "ErrorCode")
EVENT_RW = ("Read", "Write")
# A choice among a few values: anything else would silently match nothing, which reads as "no such events".
CHOICES = {
    "EventRW": EVENT_RW,
    "MFAUsed": ("true", "false"),
    "Result": ("Success", "Failure"),
    "EventCategory": ("Management", INSIGHT),
    "SensitiveAction": ("true", "false"),
}


DEFAULT_SPAN_MS = 7 * 24 * 3600 * 1000


def _time(value: str | None, name: str, default: int) -> int:
    if not value:
        return default
    try:
        return clock.parse_iso(value)
    except ValueError:
        raise ApiError(
            f"InvalidParameter.{name}",
            f'The parameter - "{name}" is not valid: use UTC in the form YYYY-MM-DDThh:mm:ssZ.',
        ) from None


def last_ms(end: str) -> int:
    """The last millisecond an EndTime includes: all of the second it names, or, when it gives milliseconds
    (`...T09:01:17.450Z`, as the console's fixed ranges do), exactly that one."""
    at = clock.parse_iso(end)
    return at if "." in end else at + 999


def window(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """The [start, end] milliseconds of a lookup: by default the 7 days up to now. A given EndTime names a
    whole second, so the events within it are included."""
    _time(end, "EndTime", now_ms)  # the parameter's own error for a malformed value
    end_ms = last_ms(end) if end else now_ms
    start_ms = _time(start, "StartTime", end_ms - DEFAULT_SPAN_MS)
    if start_ms > end_ms:
        # ActionTrail's own code and words for it.
        raise ApiError("InvalidParameterCombination", "The end time must be later than the start time.")
    return start_ms, end_ms


@dataclass(frozen=True)
class Query:
    account_id: str
    start_ms: int
    end_ms: int
    attributes: tuple[tuple[str, str], ...] = ()
    forward: bool = False
    limit: int = 20
    # The StartTime/EndTime as the caller gave them ("" for the defaults, which move with the clock).
    span: tuple[str, str] = ("", "")

    def fingerprint(self) -> str:
        text = json.dumps([self.account_id, list(self.span), sorted(self.attributes), self.forward])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Predicate:
    """One LookupAttribute read once, applied two ways: as a WHERE clause (`clause`, for LookupEvents and the
    console) and as a test of one event's column values (`test`, for alert rules, on the values `record`
    inserts). Both come from the same `op`, so a rule matches exactly the events a lookup with it finds."""

    column: Any
    # "eq", "ne", "prefix", "user" (a RAM user's short name), "null", "not_null", "is" (boolean), "never",
    # "resource" (any of the event's resources)
    op: str
    value: Any = None

    def clause(self) -> Any:
        column = self.column
        if self.op == "is":
            # The literal `= true` (not a bound parameter) lets both databases use the partial index.
            return column == true() if self.value else column == false()
        if self.op == "null":
            return column.is_(None)
        if self.op == "not_null":
            return column.is_not(None)
        if self.op == "never":
            return false()
        if self.op == "user":
            return or_(column == self.value, _prefix_clause(column, self.value + "@"))
        if self.op == "prefix":
            return _prefix_clause(column, self.value)
        if self.op == "ne":
            return column != self.value
        if self.op == "resource":
            return exists().where(event_resources.c.event_seq == events.c.seq, column == self.value)
        return column == self.value

    def test(self, row: Mapping[str, Any]) -> bool:
        """Whether an event whose indexed column values are `row` (column name -> value) satisfies it."""
        if self.op == "resource":  # one of the event's (type, name) resources, which `row` holds under RESOURCES
            at = 0 if self.column.name == "resource_type" else 1
            return any(resource[at] == self.value for resource in row.get(RESOURCES, ()))
        found = row.get(self.column.name)
        if self.op == "is":
            return bool(found) is self.value
        if self.op == "null":
            return found is None
        if self.op == "not_null":
            return found is not None
        if self.op == "never" or not isinstance(found, str):
            return False
        if self.op == "user":
            return found == self.value or _in_prefix_range(found, self.value + "@")
        if self.op == "prefix":
            return _in_prefix_range(found, self.value)
        if self.op == "ne":
            return bool(found != self.value)
        return bool(found == self.value)


def _prefix_clause(column: Any, prefix: str) -> Any:
    # A range on the index instead of LIKE, which SQLite would not use with its default case-insensitivity.
    return and_(column >= prefix, column < prefix + _TOP)


def _in_prefix_range(found: str, prefix: str) -> bool:
    return prefix <= found < prefix + _TOP


_TOP = "\U0010ffff"


def predicate(key: str, value: str) -> Predicate:
    """One LookupAttribute (also the console's filters and an alert rule's conditions), validated."""
    if key not in ATTRIBUTES:
        raise ApiError(
            "InvalidParameter.LookupAttribute.Key",
            f'The lookup attribute key "{key}" is not supported; use one of {", ".join(ATTRIBUTES)}.',
        )
    column = ATTRIBUTES[key]
    if key in CHOICES and value not in CHOICES[key]:
        raise ApiError(
            "InvalidParameter.LookupAttribute.Value",
            f'The lookup attribute {key} must be {" or ".join(CHOICES[key])}, not "{value}".',
        )
    if key in ("MFAUsed", "SensitiveAction"):
        return Predicate(column, "is", value == "true")
    if key in RESOURCE_KEYS:
        # Any of the event's resources: by its primary key (seq, type, name) wherever events are scanned; a
        # lookup led by a resource drives from the resource index instead (see `search`).
        return Predicate(column, "resource", value)
    if key == "Result":
        return Predicate(column, "null" if value == "Success" else "not_null")
    if key == "ErrorCode" and value == "*":
        return Predicate(column, "not_null")
    if key == "RoleName":
        return Predicate(column, "never")
    if key == "EventCategory":
        return Predicate(column, "eq" if value == INSIGHT else "ne", INSIGHT)
    if key == "User" and "@" not in value and value != "root":
        # A RAM user by its short name, as RAM-side events and the console name it: any of its domains.
        return Predicate(column, "user", value)
    if key in WILDCARD_KEYS and value.endswith("*"):
        return Predicate(column, "prefix", value[:-1])
    return Predicate(column, "eq", value)


def condition(key: str, value: str) -> Any:
    """The WHERE clause of one LookupAttribute (also the console's filters)."""
    return predicate(key, value).clause()


def search(conn: Connection, key: MasterKey, q: Query, token: str | None) -> tuple[list[str], str | None]:
    """One page of events (each as its stored JSON) and the token for the next, or None at the end."""
    after = open_token(key, token, q) if token else None
    attributes = q.attributes
    if all(k != "EventCategory" for k, _ in attributes):
        # Insight events only when asked for (LookupInsightEvents is their own query).
        attributes = (*attributes, ("EventCategory", "Management"))
    if any(k in RESOURCE_KEYS for k, _ in attributes):
        rows = _by_resource(conn, q, attributes, after)
    elif (spread := _spread(conn, q.account_id, attributes)) is not None:
        rows = _by_values(conn, q, *spread, after)
    else:
        where = [condition(k, v) for k, v in attributes]
        rows = list(conn.execute(_page(q, events.c.event_ms, events.c.seq, where, after)))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_token = make_token(key, q, rows[-1].event_ms, rows[-1].seq) if more and rows else None
    return [r.body for r in rows], next_token


# A prefix (EventName=Delete*, ErrorCode=Entity*) or "any error" matches a few distinct values; past this many,
# the query walks the time index instead.
MAX_SPREAD = 64


def _spread(
    conn: Connection, account_id: str, attributes: tuple[tuple[str, str], ...]
) -> tuple[Any, list[str], list[Any]] | None:
    """For a lookup with a prefix or "any error" condition: its column, the distinct values the account's events
    hold in the range, and the other conditions; None for other lookups or too many values.

    Such a condition is a range on its index, whose rows are not in time order: answering a page from it means
    reading and sorting every match, and walking the time index instead reads until a page matches, which is
    everything when nothing does (both seen at 100-300 ms at 1,000,000 events). One page per distinct value,
    each an index range scan in time order that stops after a page, merged, reads at most a page per value."""
    for i, (key, value) in enumerate(attributes):
        found = predicate(key, value)
        if found.op not in ("prefix", "not_null") or key not in WILDCARD_KEYS + ("Result",):
            continue
        column = found.column
        low, top = (found.value, found.value + _TOP) if found.op == "prefix" else ("", _TOP)
        first = select(func.min(column)).where(events.c.account_id == account_id, column >= low, column < top)
        values: list[str] = []
        value_found = conn.execute(first).scalar()
        # A loose index scan: each next value is one seek on the column's index.
        while value_found is not None and len(values) <= MAX_SPREAD:
            values.append(value_found)
            following = select(func.min(column)).where(
                events.c.account_id == account_id, column > value_found, column < top
            )
            value_found = conn.execute(following).scalar()
        if len(values) > MAX_SPREAD:
            return None
        rest = [condition(k, v) for j, (k, v) in enumerate(attributes) if j != i]
        return column, values, rest
    return None


def _by_values(
    conn: Connection, q: Query, column: Any, values: list[str], rest: list[Any], after: tuple[int, int] | None
) -> list[Any]:
    """A page merged from one page per value of `column` (see `_spread`), in one statement; bodies are read for
    the merged page only."""
    if not values:
        return []
    key = (events.c.seq.label("seq"), events.c.event_ms.label("event_ms"))
    parts = [
        _page(q, events.c.event_ms, events.c.seq, [column == v, *rest], after).with_only_columns(*key) for v in values
    ]
    merged = union_all(*(select(part.subquery()) for part in parts)).subquery()
    page = select(merged).order_by(*_order(q, merged.c.event_ms, merged.c.seq)).limit(q.limit + 1).subquery()
    query = select(page.c.seq, page.c.event_ms, events.c.body).join_from(page, events, events.c.seq == page.c.seq)
    return list(conn.execute(query.order_by(*_order(q, page.c.event_ms, page.c.seq))).all())


def _order(q: Query, ms: Any, seq: Any) -> tuple[Any, Any]:
    return (ms.asc(), seq.asc()) if q.forward else (ms.desc(), seq.desc())


def _page(
    q: Query,
    ms: Any,
    seq: Any,
    where: list[Any],
    after: tuple[int, int] | None,
    source: Any = None,
    account: Any = None,
) -> Any:
    """The query of up to limit + 1 rows (seq, event_ms, body) in the query's order after the keyset position
    `after`, walking the index whose time and sequence columns are `ms` and `seq`."""
    account = events.c.account_id if account is None else account
    where = [account == q.account_id, ms >= q.start_ms, ms <= q.end_ms, *where]
    if after is not None:
        after_ms, after_seq = after
        if q.forward:
            where.append(or_(ms > after_ms, and_(ms == after_ms, seq > after_seq)))
        else:
            where.append(or_(ms < after_ms, and_(ms == after_ms, seq < after_seq)))
    query = select(seq.label("seq"), ms.label("event_ms"), events.c.body).where(*where).order_by(*_order(q, ms, seq))
    if source is not None:
        query = query.select_from(source)
    return query.limit(q.limit + 1)


def resource_led(attributes: tuple[tuple[str, str], ...]) -> list[Any]:
    """The WHERE clauses of a query that walks event_resources joined to events: the resource keys on the index
    rows (one resource must match them all), the other keys on the events."""
    by_name = any(k == "ResourceName" for k, _ in attributes)
    # With a name, the name's index leads (a type has many more rows): `|| ''` keeps the planner off the type's.
    where = [
        (ATTRIBUTES[k].concat("") if by_name and k == "ResourceType" else ATTRIBUTES[k]) == v
        for k, v in attributes
        if k in RESOURCE_KEYS
    ]
    return where + [condition(k, v) for k, v in attributes if k not in RESOURCE_KEYS]


def _by_resource(
    conn: Connection, q: Query, attributes: tuple[tuple[str, str], ...], after: tuple[int, int] | None
) -> list[Any]:
    """A page led by the resource index: its rows for the resource, in time order, joined to their events. An
    event naming several matching resources (a batch of users, by ResourceType) has several index rows, so
    the walk goes on past repeats until it has a page of distinct events."""
    r = event_resources
    source = r.join(events, events.c.seq == r.c.event_seq)
    where = resource_led(attributes)
    found: list[Any] = []
    while True:
        rows = list(conn.execute(_page(q, r.c.event_ms, r.c.event_seq, where, after, source, r.c.account_id)))
        for row in rows:
            if not found or found[-1].seq != row.seq:
                found.append(row)
        if len(found) > q.limit or len(rows) <= q.limit:
            return found
        after = (rows[-1].event_ms, rows[-1].seq)


def make_token(key: MasterKey, q: Query, event_ms: int, seq: int) -> str:
    payload = json.dumps([q.fingerprint(), event_ms, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + b"." + key.mac(payload)[:16]).decode().rstrip("=")


def open_token(key: MasterKey, token: str, q: Query) -> tuple[int, int]:
    bad = ApiError(
        "InvalidParameter.NextToken",
        'The parameter - "NextToken" is not valid: pass the NextToken of the previous '
        "response unchanged, with the same other parameters.",
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, mac = raw[:-17], raw[-16:]
        if raw[-17:-16] != b"." or not _equal(key.mac(payload)[:16], mac):
            raise bad
        fingerprint, event_ms, seq = json.loads(payload)
    except (ValueError, TypeError):
        raise bad from None
    if fingerprint != q.fingerprint():
        raise bad
    return int(event_ms), int(seq)


def _equal(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)
