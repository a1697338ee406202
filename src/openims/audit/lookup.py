"""Event history queries (LookupEvents, the CLI and the console): indexed filters, keyset pages, and
NextTokens that are signed and bound to the account and the filters, so they cannot be forged or reused."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, false, or_, select, true

from openims import clock
from openims.crypto import MasterKey
from openims.errors import ApiError
from openims.store.schema import events
from openims.store.tables.event_resources import event_resources

# LookupAttribute keys -> indexed column. ErrorCode, MFAUsed and Result are OpenIMS extensions.
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
}
RESOURCE_KEYS = ("ResourceType", "ResourceName")
WILDCARD_KEYS = ("EventName", "ErrorCode")
EVENT_RW = ("Read", "Write")
# A choice among a few values: anything else would silently match nothing, which reads as "no such events".
CHOICES = {
    "EventRW": EVENT_RW,
    "MFAUsed": ("true", "false"),
    "Result": ("Success", "Failure"),
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


def condition(key: str, value: str) -> Any:
    """The WHERE clause of one LookupAttribute (also the console's filters)."""
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
        # The literal `= true` (not a bound parameter) lets both databases use the partial index.
        return column == true() if value == "true" else column == false()
    if key in RESOURCE_KEYS:
        # Any of the event's resources: by its primary key (seq, type, name) wherever events are scanned; a
        # lookup led by a resource drives from the resource index instead (see `search`).
        return exists().where(event_resources.c.event_seq == events.c.seq, column == value)
    if key == "Result":
        return column.is_(None) if value == "Success" else column.is_not(None)
    if key == "ErrorCode" and value == "*":
        return column.is_not(None)
    if key == "RoleName":
        return false()
    if key == "User" and "@" not in value and value != "root":
        # A RAM user by its short name, as RAM-side events and the console name it: any of its domains.
        return or_(column == value, and_(column >= value + "@", column < value + "@\U0010ffff"))
    if key in WILDCARD_KEYS and value.endswith("*"):
        prefix = value[:-1]
        # A range on the index instead of LIKE, which SQLite would not use with its default case-insensitivity.
        return and_(column >= prefix, column < prefix + "\U0010ffff")
    return column == value


def search(conn: Connection, key: MasterKey, q: Query, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events (full records) and the token for the next, or None at the end."""
    after = _open_token(key, token, q) if token else None
    if any(k in RESOURCE_KEYS for k, _ in q.attributes):
        rows = _by_resource(conn, q, after)
    else:
        rows = _page(conn, q, events.c.event_ms, events.c.seq, [condition(k, v) for k, v in q.attributes], after)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_token = _make_token(key, q, rows[-1].event_ms, rows[-1].seq) if more and rows else None
    return [json.loads(r.body) for r in rows], next_token


def _page(
    conn: Connection,
    q: Query,
    ms: Any,
    seq: Any,
    where: list[Any],
    after: tuple[int, int] | None,
    source: Any = None,
    account: Any = None,
) -> list[Any]:
    """Up to limit + 1 rows (seq, event_ms, body) in the query's order after the keyset position `after`, walking
    the index whose time and sequence columns are `ms` and `seq`."""
    account = events.c.account_id if account is None else account
    where = [account == q.account_id, ms >= q.start_ms, ms <= q.end_ms, *where]
    if after is not None:
        after_ms, after_seq = after
        if q.forward:
            where.append(or_(ms > after_ms, and_(ms == after_ms, seq > after_seq)))
        else:
            where.append(or_(ms < after_ms, and_(ms == after_ms, seq < after_seq)))
    order = (ms.asc(), seq.asc()) if q.forward else (ms.desc(), seq.desc())
    query = select(seq.label("seq"), ms.label("event_ms"), events.c.body).where(*where).order_by(*order)
    if source is not None:
        query = query.select_from(source)
    return list(conn.execute(query.limit(q.limit + 1)).all())


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


def _by_resource(conn: Connection, q: Query, after: tuple[int, int] | None) -> list[Any]:
    """A page led by the resource index: its rows for the resource, in time order, joined to their events. An
    event naming several matching resources (a batch of users, by ResourceType) has several index rows, so
    the walk goes on past repeats until it has a page of distinct events."""
    r = event_resources
    source = r.join(events, events.c.seq == r.c.event_seq)
    where = resource_led(q.attributes)
    found: list[Any] = []
    while True:
        rows = _page(conn, q, r.c.event_ms, r.c.event_seq, where, after, source, r.c.account_id)
        for row in rows:
            if not found or found[-1].seq != row.seq:
                found.append(row)
        if len(found) > q.limit or len(rows) <= q.limit:
            return found
        after = (rows[-1].event_ms, rows[-1].seq)


def _make_token(key: MasterKey, q: Query, event_ms: int, seq: int) -> str:
    payload = json.dumps([q.fingerprint(), event_ms, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + b"." + key.mac(payload)[:16]).decode().rstrip("=")


def _open_token(key: MasterKey, token: str, q: Query) -> tuple[int, int]:
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
