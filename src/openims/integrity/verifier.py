"""`openims events verify`: recompute every leaf from the stored events and check the whole log against its
signed checkpoints. Reports where the stored history first differs from what was signed: an edited event (body
or indexed column), a deleted position or event, an event that never entered the log, leaves in another order,
and any checkpoint whose signature or chain fails. Leaves after the newest checkpoint are a tail, reported as
such (not as tampering) while younger than a few checkpoint intervals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, and_, func, select

from openims import clock
from openims.audit.event import mfa_used
from openims.errors import ApiError
from openims.integrity import checkpoint, signing_keys
from openims.integrity.canonical import canonical_event
from openims.integrity.merkle import Frontier, leaf_hash
from openims.integrity.sequencer import stored_checkpoint
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.integrity import log_checkpoints, log_leaves, log_queue, log_state

# The indexed columns of an event, as audit.event.record derives them from the event it stores.
_COLUMNS = (
    "event_name",
    "event_rw",
    "service_name",
    "user_name",
    "access_key_id",
    "resource_type",
    "principal_id",
    "event_type",
)


@dataclass
class AccountReport:
    account_id: str
    events: int = 0
    checkpoints: int = 0
    start: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


PROGRESS_EVERY = 10_000

# The event that records a verification (console button, `openims events verify`), in the account verified.
EVENT = "VerifyEventLog"


def outcome(report: AccountReport) -> tuple[dict[str, Any] | None, ApiError | None]:
    """What a verification's event records: its counts, or the first place the log differs."""
    if report.problems:
        return None, ApiError("EventLog.Tampered", report.problems[0])
    return {"Events": report.events, "Checkpoints": report.checkpoints}, None


def verify(
    rt: Runtime,
    account_id: str | None = None,
    since_ms: int | None = None,
    trusted: Sequence[Ed25519PublicKey] = (),
    progress: Callable[[int], None] | None = None,
) -> list[AccountReport]:
    """Verify the log of one account or of every account. `trusted` public keys, when given, are the only ones
    believed; otherwise the keys listed in the database are (a reader who distrusts the database pins them).
    `progress`, if given, is called with the count of events checked so far every PROGRESS_EVERY events."""
    with rt.db.read() as conn:
        keys = {checkpoint.key_id(k): k for k in trusted} or {k.key_id: k.load() for k in signing_keys.listed(conn)}
        if account_id is not None:
            accounts = [account_id]
        else:
            accounts = sorted(
                set(conn.execute(select(log_state.c.account_id)).scalars())
                | set(conn.execute(select(events.c.account_id).distinct()).scalars())
            )
        return [_verify_account(rt, conn, a, since_ms, keys, progress) for a in accounts]


def _verify_account(
    rt: Runtime,
    conn: Connection,
    account_id: str,
    since_ms: int | None,
    keys: dict[str, Ed25519PublicKey],
    progress: Callable[[int], None] | None,
) -> AccountReport:
    report = AccountReport(account_id)
    cps = [
        r
        for r in conn.execute(
            select(log_checkpoints).where(log_checkpoints.c.account_id == account_id).order_by(log_checkpoints.c.size)
        )
    ]
    report.checkpoints = len(cps)
    _check_checkpoints(report, cps, keys)
    state = conn.execute(select(log_state).where(log_state.c.account_id == account_id)).first()
    start = state.start if state is not None else 0
    if since_ms is not None:
        # Start at the newest checkpoint signed before `since`: the leaves before it are vouched for by it.
        earlier = [c for c in cps if c.time_ms <= since_ms and c.size >= start]
        if earlier:
            start = earlier[-1].size
    begin = next((c for c in cps if c.size == start), None)
    if start and begin is None:
        report.problems.append(f"no checkpoint at position {start}, where the stored log starts")
        return report
    report.start = start
    frontier = Frontier()
    if begin is not None:
        # The stored frontier is not itself signed: it must hash to the signed root of its checkpoint.
        try:
            frontier = Frontier.from_json(json.loads(begin.frontier))
        except ValueError:
            frontier = Frontier()
        if frontier.size != begin.size or frontier.root() != bytes(begin.root):
            report.problems.append(f"checkpoint at size {begin.size}: its stored frontier does not match its root")
            return report
    wanted = {c.size: c for c in cps if c.size > start}
    expected = start
    for row in _leaves(conn, account_id, start):
        if row.leaf_index != expected:
            report.problems.append(f"position {expected}: missing from the log (leaves deleted up to {row.leaf_index})")
            return report
        if row.body is None:
            report.problems.append(f"position {row.leaf_index}: event {row.event_id} deleted")
            return report
        event = json.loads(row.body)
        recomputed = leaf_hash(canonical_event(event))
        if recomputed != bytes(row.leaf_hash) or event.get("eventId") != row.event_id:
            report.problems.append(f"position {row.leaf_index}: event {row.event_id} edited or moved")
            return report
        if column := _edited_column(row, event):
            report.problems.append(f"position {row.leaf_index}: event {row.event_id} edited (indexed column {column})")
            return report
        frontier.append(recomputed)
        expected += 1
        report.events += 1
        if progress is not None and report.events % PROGRESS_EVERY == 0:
            progress(report.events)
        cp = wanted.get(frontier.size)
        if cp is not None and frontier.root() != bytes(cp.root):
            report.problems.append(
                f"checkpoint at size {cp.size}: the stored events do not hash to its signed root "
                f"(a change among positions up to {cp.size - 1})"
            )
            return report
    newest = cps[-1] if cps else None
    if newest is not None and newest.size > expected:
        report.problems.append(
            f"checkpoint at size {newest.size} covers positions up to {newest.size - 1}, "
            f"but the log ends at position {expected - 1}: newest events deleted"
        )
        return report
    _check_outside_log(report, conn, account_id)
    _tail(report, rt, conn, account_id, newest, expected)
    if start:
        report.notes.append(f"verified from position {start}, a signed checkpoint (earlier events were purged)")
    return report


def _check_checkpoints(report: AccountReport, cps: list[Any], keys: dict[str, Ed25519PublicKey]) -> None:
    # The first stored checkpoint may follow purged ones, so only the links after it can be checked here.
    previous: bytes | None = None
    for row in cps:
        cp = stored_checkpoint(row)
        key = keys.get(cp.key_id)
        if key is None:
            report.problems.append(f"checkpoint at size {cp.size}: signed by unknown key {cp.key_id}")
        elif not checkpoint.verify(cp, key):
            report.problems.append(f"checkpoint at size {cp.size}: signature does not verify")
        if previous is not None and cp.previous != previous:
            report.problems.append(f"checkpoint at size {cp.size}: does not follow the checkpoint before it")
        previous = checkpoint.digest(cp)


def _leaves(conn: Connection, account_id: str, start: int) -> Iterator[Any]:
    query = (
        select(
            log_leaves.c.leaf_index,
            log_leaves.c.event_id,
            log_leaves.c.leaf_hash,
            events.c.body,
            events.c.account_id,
            events.c.event_ms,
            events.c.mfa_used,
            *(events.c[c] for c in _COLUMNS),
            events.c.resource_name,
            events.c.error_code,
            events.c.source_ip,
        )
        .select_from(log_leaves.outerjoin(events, events.c.event_id == log_leaves.c.event_id))
        .where(log_leaves.c.account_id == account_id, log_leaves.c.leaf_index >= start)
        .order_by(log_leaves.c.leaf_index)
    )
    yield from conn.execution_options(yield_per=5000).execute(query)


def _edited_column(row: Any, event: dict[str, Any]) -> str | None:
    identity = event.get("userIdentity") or {}
    derived = {
        "account_id": event.get("recipientAccountId"),
        "event_ms": clock.parse_iso(event["eventTime"]) if "eventTime" in event else None,
        "event_name": event.get("eventName"),
        "event_rw": event.get("eventRW"),
        "service_name": event.get("serviceName"),
        "user_name": identity.get("userName", ""),
        "access_key_id": identity.get("accessKeyId", ""),
        "principal_id": str(identity.get("principalId", ""))[:64],
        "event_type": (event.get("eventType") or "")[:32],
        "resource_type": (event.get("resourceType") or "")[:64],
        "resource_name": (event.get("resourceName") or "")[:255],
        "error_code": event.get("errorCode"),
        "source_ip": (event.get("sourceIpAddress") or "")[:64],
        "mfa_used": mfa_used(event),
    }
    for column, value in derived.items():
        stored = getattr(row, column)
        if column == "event_ms":
            # eventTime has whole seconds: the stored millisecond must fall within it.
            if value is None or not value <= stored < value + 1000:
                return column
        elif stored != value:
            return column
    return None


def _check_outside_log(report: AccountReport, conn: Connection, account_id: str) -> None:
    """An event stored for the account that is neither in the log nor waiting to enter it was not recorded by
    OpenIMS: it was inserted."""
    stray = conn.execute(
        select(events.c.event_id)
        .select_from(
            events.outerjoin(log_leaves, log_leaves.c.event_id == events.c.event_id).outerjoin(
                log_queue, log_queue.c.event_id == events.c.event_id
            )
        )
        .where(and_(events.c.account_id == account_id, log_leaves.c.event_id.is_(None), log_queue.c.id.is_(None)))
        .limit(1)
    ).first()
    if stray is not None:
        report.problems.append(f"event {stray.event_id} is stored but not in the log: inserted")


def _tail(report: AccountReport, rt: Runtime, conn: Connection, account_id: str, newest: Any, size: int) -> None:
    queued = conn.execute(
        select(func.count()).select_from(log_queue).where(log_queue.c.account_id == account_id)
    ).scalar_one()
    covered = newest.size if newest is not None else 0
    if size > covered or queued:
        report.notes.append(
            f"{size - covered + queued} newest events are not yet covered by a signed checkpoint "
            f"(one is signed within {rt.settings.checkpoint_seconds:g} s of each commit while `serve` runs)"
        )
