"""Where and how an AccessKey is used: ActionTrail's GetAccessKeyLastUsedInfo, ...Products, ...Ips, ...Events
and ...Resources, answered from the account's stored events.

Every authenticated call is an event carrying its AccessKey ID, so the event store knows each key's newest use,
and per service its source IPs, the actions it called and the resources it touched. The lists are distinct
values with the newest use of each: they are read by a loose index scan over the partial indexes of
`openims.store.tables.key_activity` (one seek from each value to the next smaller one, which also lands on that
value's newest event), so their cost grows with the number of distinct values, not with the key's events.

Unlike ActionTrail (hourly, 400 days), the answer is current to the last committed call and covers the events
still stored (OPENIMS_EVENT_RETENTION_DAYS); a key whose events were all purged still has its newest use from
`openims.credentials.key_usage`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, select, text

from openims.actions.access_keys import ACCESS_KEY
from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, SERVICES, action
from openims.credentials import key_usage
from openims.errors import ApiError
from openims.params import Int, Str
from openims.store.schema import access_keys, events, users

KEY = Str("AccessKey", required=True, max_len=128)
SERVICE = Str("ServiceName", required=True, max_len=64)
PAGE_PARAMS = (KEY, Str("NextToken", max_len=512), Int("PageSize", min=0, max=100, default=20), SERVICE)
# Our events are all management events (ActionTrail's other Source values: DataEvent, Internal).
SOURCE = "ManagementEvent"
# The product names ActionTrail's console shows for the services OpenIMS serves (IMS is part of RAM).
PRODUCT_NAMES = {
    "Ims": ("Resource Access Management", "访问控制"),
    "Ram": ("Resource Access Management", "访问控制"),
    "Actiontrail": ("ActionTrail", "操作审计"),
}
# More distinct values than this for one key and service are not listed (a key used from more IPs than this is
# an incident, and the first page, newest first, still shows the latest of them).
MAX_DISTINCT = 10_000
# The partial indexes' own condition, written out: SQLite uses a partial index only when the query states it.
KEYED = text("events.access_key_id <> ''")


@dataclass(frozen=True)
class Use:
    """The newest event of a distinct value (an IP, an event name, a resource) of one key."""

    values: tuple[str, ...]
    event_ms: int
    seq: int


def _key_scope(ctx: CallContext, key_id: str) -> list[Any]:
    """The WHERE clause of the key's events, once the key is known to be this account's: a key of the account
    (live, deleted or in the recycle bin) or one its stored events name (a key purged since)."""
    scope: list[Any] = [events.c.account_id == ctx.account_id, events.c.access_key_id == key_id, KEYED]
    mine = ctx.conn.execute(
        select(access_keys.c.id).where(access_keys.c.id == key_id, access_keys.c.account_id == ctx.account_id)
    ).first()
    if mine is None and ctx.conn.execute(select(events.c.seq).where(*scope).limit(1)).first() is None:
        raise ApiError("EntityNotExist.User.AccessKey", f"The AccessKey does not exist: {key_id}.")
    ctx.reference(ACCESS_KEY, key_id)
    return scope


def _service(name: str) -> str:
    """The event's serviceName for a ServiceName given in any case (`ims`, `Ims`)."""
    known = {s.name.lower(): s.name for s in SERVICES.values()}
    return known.get(name.lower(), name)


def _loose_scan(columns: tuple[str, ...], service: bool, named: bool) -> TextClause:
    """The SQL of a backward loose index scan over `columns` (one or two) of one key's events: a recursive query
    whose every step is an index seek to the largest value below the previous one, landing on that value's newest
    event. One statement for the whole scan, so its cost is a seek per distinct value inside the database.
    `columns` come from this module's own lists, never from a caller."""
    cols = ", ".join(columns)
    where = "account_id = :account AND access_key_id = :key AND access_key_id <> ''"  # <> '': see KEYED
    where += " AND service_name = :service" if service else ""
    where += " AND resource_name <> ''" if named else ""
    order = ", ".join(f"{c} DESC" for c in columns) + ", event_ms DESC, seq DESC"
    # The next value below the previous one: for a pair, first the same first part with a smaller second part,
    # else a smaller first part. Two plain range seeks; a row-value comparison against the previous row is not
    # used as an index range by SQLite (only its first column is), which would scan.
    first, rest = columns[0], columns[1:]

    def seek(condition: str) -> str:
        return f"(SELECT seq FROM events WHERE {where} AND {condition} ORDER BY {order} LIMIT 1)"

    step = seek(f"{first} < s.{first}")
    if rest:
        step = f"COALESCE({seek(f'{first} = s.{first} AND {rest[0]} < s.{rest[0]}')}, {step})"
    return text(
        f"WITH RECURSIVE s(n, {cols}, event_ms, seq) AS ("
        f" SELECT 1, {cols}, event_ms, seq FROM"
        f" (SELECT {cols}, event_ms, seq FROM events WHERE {where} ORDER BY {order} LIMIT 1) AS newest"
        f" UNION ALL"
        f" SELECT s.n + 1, {', '.join(f'e.{c}' for c in columns)}, e.event_ms, e.seq FROM s JOIN events e ON e.seq ="
        f" {step}"
        f" WHERE s.n < :most"
        f") SELECT {cols}, event_ms, seq FROM s"
    )


def distinct_uses(
    ctx: CallContext, key_id: str, columns: tuple[str, ...], service: str | None = None, named: bool = False
) -> list[Use]:
    """Each distinct value of `columns` among the key's events (in `service`; with a resource when `named`),
    with its newest event; at most MAX_DISTINCT values."""
    params = {"account": ctx.account_id, "key": key_id, "most": MAX_DISTINCT}
    if service is not None:
        params["service"] = service
    rows = ctx.conn.execute(_loose_scan(columns, service is not None, named), params).all()
    width = len(columns)
    return [Use(tuple(str(v) for v in r[:width]), int(r[width]), int(r[width + 1])) for r in rows]


def _details(ctx: CallContext, seqs: list[int]) -> dict[int, str]:
    """The stored event bodies (ActionTrail's `Detail`: the event as a JSON string) by seq."""
    if not seqs:
        return {}
    rows = ctx.conn.execute(select(events.c.seq, events.c.body).where(events.c.seq.in_(seqs))).all()
    return {r.seq: r.body for r in rows}


TOKEN_PURPOSE = "GetAccessKeyLastUsed-page"


def _token(ctx: CallContext, scope: str, offset: int) -> str:
    return ctx.runtime.master_key.sign_token(TOKEN_PURPOSE, json.dumps([scope, offset]).encode())


def _offset(ctx: CallContext, scope: str, token: str | None) -> int:
    if not token:
        return 0
    payload = ctx.runtime.master_key.open_token(TOKEN_PURPOSE, token)
    try:
        named, offset = json.loads(payload) if payload is not None else (None, None)
    except (ValueError, TypeError):
        named, offset = None, None
    if named != scope or not isinstance(offset, int) or offset < 0:
        raise ApiError(
            "InvalidParameter.NextToken",
            'The parameter - "NextToken" is not valid: pass the NextToken of the previous response unchanged, '
            "with the same AccessKey and ServiceName.",
        )
    return offset


def _listing(
    ctx: CallContext,
    p: dict[str, Any],
    columns: tuple[str, ...],
    field: str,
    view: Callable[[Use], dict[str, str]],
    named: bool = False,
) -> dict[str, Any]:
    """One page of the distinct values of `columns` for the key and service, most recently used first."""
    service = _service(p["ServiceName"])
    _key_scope(ctx, p["AccessKey"])
    uses = distinct_uses(ctx, p["AccessKey"], columns, service, named)
    uses.sort(key=lambda u: (-u.event_ms, -u.seq))
    # The token is bound to the list it pages (action, key, service), so it cannot be replayed on another.
    bound = hashlib.sha256(f"{field}\0{p['AccessKey']}\0{service}".encode()).hexdigest()[:16]
    start = _offset(ctx, bound, p["NextToken"])
    size = p["PageSize"] or 20
    page = uses[start : start + size]
    details = _details(ctx, [u.seq for u in page])
    out: dict[str, Any] = {
        field: [
            {**view(u), "UsedTimestamp": u.event_ms, "Source": SOURCE, "Detail": details.get(u.seq, "")} for u in page
        ]
    }
    if start + size < len(uses):
        out["NextToken"] = _token(ctx, bound, start + size)
    return out


def _product(service: str) -> dict[str, str]:
    en, cn = PRODUCT_NAMES.get(service, (service, service))
    return {"ServiceName": service, "ServiceNameCn": cn, "ServiceNameEn": en}


def _owner(ctx: CallContext, key_id: str, detail: str) -> dict[str, str]:
    """Who the key belongs to: its user (or the account itself), from the key's row, else from its event."""
    row = ctx.conn.execute(
        select(access_keys.c.user_id, users.c.name)
        .select_from(access_keys.outerjoin(users, users.c.id == access_keys.c.user_id))
        .where(access_keys.c.id == key_id, access_keys.c.account_id == ctx.account_id)
    ).first()
    if row is not None and row.user_id is None:
        return {"OwnerId": ctx.account_id, "UserName": "root", "AccountType": "root-account"}
    if row is not None:
        return {"OwnerId": row.user_id, "UserName": row.name or "", "AccountType": "ram-user"}
    identity = json.loads(detail).get("userIdentity", {}) if detail else {}
    return {
        "OwnerId": identity.get("principalId", ""),
        "UserName": identity.get("userName", ""),
        "AccountType": identity.get("type", ""),
    }


@action(
    "GetAccessKeyLastUsedInfo",
    service=ACTIONTRAIL,
    params=(KEY,),
    resource=(ACCESS_KEY, "AccessKey"),
)
def get_access_key_last_used_info(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The newest use of an AccessKey of the account: when, for which service, the event itself (`Detail`), and
    whose key it is. A key never used has an empty ServiceName and no UsedTimestamp."""
    key_id = p["AccessKey"]
    scope = _key_scope(ctx, key_id)
    newest = ctx.conn.execute(
        select(events.c.event_ms, events.c.service_name, events.c.body)
        .where(*scope)
        .order_by(events.c.event_ms.desc(), events.c.seq.desc())
        .limit(1)
    ).first()
    out: dict[str, Any] = {"AccessKeyId": key_id, "AccountId": ctx.account_id}
    if newest is not None:
        out.update(_product(newest.service_name), UsedTimestamp=newest.event_ms, Source=SOURCE, Detail=newest.body)
    else:
        # Its events have all been purged (retention): the last-used record still knows the newest use.
        use = key_usage.last_used(ctx.runtime, ctx.conn, [key_id]).get(key_id)
        if use is None:
            out.update(ServiceName="", Source="", Detail="")
        else:
            out.update(_product(use.service), UsedTimestamp=use.ms, Source="Internal", Detail="")
    out.update(_owner(ctx, key_id, out["Detail"]))
    return out


@action(
    "GetAccessKeyLastUsedProducts",
    service=ACTIONTRAIL,
    params=(KEY,),
    resource=(ACCESS_KEY, "AccessKey"),
)
def get_access_key_last_used_products(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each service the AccessKey called, with its newest call there, most recent first."""
    # A service's newest call is the newest of its (service, source IP) pairs' newest calls, which the IP
    # index lists in one loose scan.
    by_service: dict[str, Use] = {}
    _key_scope(ctx, p["AccessKey"])
    for use in distinct_uses(ctx, p["AccessKey"], ("service_name", "source_ip")):
        best = by_service.get(use.values[0])
        if best is None or (use.event_ms, use.seq) > (best.event_ms, best.seq):
            by_service[use.values[0]] = Use(use.values[:1], use.event_ms, use.seq)
    newest = sorted(by_service.values(), key=lambda u: (-u.event_ms, -u.seq))
    details = _details(ctx, [u.seq for u in newest])
    return {
        "Products": [
            {**_product(u.values[0]), "UsedTimestamp": u.event_ms, "Source": SOURCE, "Detail": details[u.seq]}
            for u in newest
        ]
    }


@action(
    "GetAccessKeyLastUsedIps",
    service=ACTIONTRAIL,
    params=PAGE_PARAMS,
    resource=(ACCESS_KEY, "AccessKey"),
)
def get_access_key_last_used_ips(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each source IP address the AccessKey called the service from, with its newest call, most recent first
    (an address OpenIMS could not tell, such as junk in X-Forwarded-For from a trusted proxy, is `""`)."""
    return _listing(ctx, p, ("source_ip",), "Ips", lambda u: {"Ip": u.values[0]})


@action(
    "GetAccessKeyLastUsedEvents",
    service=ACTIONTRAIL,
    params=PAGE_PARAMS,
    resource=(ACCESS_KEY, "AccessKey"),
)
def get_access_key_last_used_events(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each action (event name) the AccessKey called in the service, with its newest call, most recent first."""
    return _listing(ctx, p, ("event_name",), "Events", lambda u: {"EventName": u.values[0]})


@action(
    "GetAccessKeyLastUsedResources",
    service=ACTIONTRAIL,
    params=PAGE_PARAMS,
    resource=(ACCESS_KEY, "AccessKey"),
)
def get_access_key_last_used_resources(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each resource the AccessKey's calls in the service acted on (the event's resourceType and
    resourceName), with its newest call, most recent first; calls that name no resource are not listed."""
    return _listing(
        ctx,
        p,
        ("resource_type", "resource_name"),
        "Resources",
        lambda u: {"ResourceType": u.values[0], "ResourceName": u.values[1]},
        named=True,
    )
