"""Writes a trail's digest files next to its event files in a bucket (the format: integrity/digests.py).

Cadence: one digest per delivered event file, written right after it, so a delivery is vouched for within the
same second rather than at the end of an hour. Each digest is fixed in the database first (its key and exact
signed bytes, chained to the destination's previous digest under a lock of the chain's head) and then stored;
a retried batch finds its digest there and stores the very same object again, so delivery stays at-least-once
and idempotent and the chain never forks. Chains are per trail and destination (bucket and key prefix): a
trail moved to another bucket starts a new chain there."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openims import clock
from openims.delivery.batch import Batch
from openims.delivery.sinks import ObjectStore
from openims.delivery.sinks.objectkey import LogFile, store_log_files
from openims.delivery.targets import Target
from openims.integrity import checkpoint, coverage, digests, signing_keys
from openims.runtime import Runtime
from openims.store.tables.digests import trail_digest_heads, trail_digests
from openims.store.tables.trails import trail_batches

log = logging.getLogger("openims.delivery")
KEEP_MS = 24 * 3600 * 1000  # as delivered batch rows


def deliver(rt: Runtime, trail: Any, target: Target, batch: Batch, covered: coverage.Coverage) -> None:
    """Deliver `batch` to a bucket target: its event files (management events, and insight events apart), then
    its digest. Raises `DeliveryError`."""
    sink = target.sink
    if not isinstance(sink, ObjectStore):
        target.deliver(batch)  # not bucket-like, or not configured (then this raises why)
        return
    files = store_log_files(sink, batch)
    if not files:
        return
    location = f"{sink.bucket}/{sink.key_prefix.strip('/')}"
    with rt.db.read() as conn:
        found = _stored(conn, trail.id, location, batch.batch_id)
    key, body = found or _chain(rt, trail, sink, location, files, batch, covered)
    sink.store(key, body, "application/json")


def _entry(rt: Runtime, trail: Any, obj: LogFile, batch: Batch, covered: coverage.Coverage) -> dict[str, Any]:
    """One event file's part of a digest: its hash, its events' leaf indexes and one proof of them all."""
    events = obj.events
    indexes = [covered.leaves[e["eventId"]].index if e.get("eventId") in covered.leaves else None for e in events]
    known = [i for i in indexes if i is not None]
    proof: list[str] | None = None
    if covered.checkpoint is not None and known:
        try:
            proof = [_b64(h) for h in coverage.proof(rt, batch.account_id, known, covered.checkpoint)]
        except ValueError:
            log.exception("no inclusion proof for trail %s batch %s", trail.name, batch.batch_id)
    return {
        "key": obj.key,
        "sha256": digests.sha256_hex(obj.body),
        "eventCount": len(events),
        "firstEventId": events[0].get("eventId"),
        "lastEventId": events[-1].get("eventId"),
        "leafIndexes": indexes,
        "inclusionProof": proof,
    }


def _stored(conn: Connection, trail_id: str, location: str, batch_id: str) -> tuple[str, bytes] | None:
    row = conn.execute(
        select(trail_digests.c.digest_key, trail_digests.c.body).where(
            trail_digests.c.trail_id == trail_id,
            trail_digests.c.location == location,
            trail_digests.c.batch_id == batch_id,
        )
    ).first()
    return (row.digest_key, bytes(row.body)) if row is not None else None


def _chain(
    rt: Runtime,
    trail: Any,
    sink: ObjectStore,
    location: str,
    files: list[LogFile],
    batch: Batch,
    covered: coverage.Coverage,
) -> tuple[str, bytes]:
    """Fix the digest of `files`, the batch's event files, chained to the destination's newest digest; returns
    the digest's key and bytes."""
    entries = [_entry(rt, trail, obj, batch, covered) for obj in files]
    now = clock.now_ms()
    with rt.db.transaction() as conn:
        if (found := _stored(conn, trail.id, location, batch.batch_id)) is not None:
            return found  # another deliverer chained it meanwhile
        head = _locked_head(conn, trail.id, location)
        sequence = head.sequence + 1
        key = digests.digest_key(
            sink.key_prefix, batch.region, trail.name, datetime.fromtimestamp(now / 1000, UTC), sequence
        )
        doc = {
            "format": digests.FORMAT,
            "accountId": batch.account_id,
            "trailName": trail.name,
            "region": batch.region,
            "bucket": sink.bucket,
            "prefix": sink.key_prefix.strip("/"),
            "sequence": sequence,
            "digestKey": key,
            "digestTime": clock.iso_ms(now),
            "previousDigestKey": head.digest_key,
            "previousDigestSha256": head.digest_sha256,
            "previousDigestSignature": head.signature,
            "logFiles": entries,
            "checkpoint": checkpoint.to_json(covered.checkpoint) if covered.checkpoint is not None else None,
        }
        key_id, private = signing_keys.current(rt, conn)
        body, signature = digests.sign(doc, key_id, private)
        conn.execute(
            insert(trail_digests).values(
                trail_id=trail.id,
                location=location,
                batch_id=batch.batch_id,
                sequence=sequence,
                digest_key=key,
                body=body,
                created_ms=now,
            )
        )
        conn.execute(
            update(trail_digest_heads)
            .where(trail_digest_heads.c.trail_id == trail.id, trail_digest_heads.c.location == location)
            .values(sequence=sequence, digest_key=key, digest_sha256=digests.sha256_hex(body), signature=signature)
        )
    return key, body


def _locked_head(conn: Connection, trail_id: str, location: str) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    empty = dialect.insert(trail_digest_heads).values(trail_id=trail_id, location=location, sequence=-1)
    conn.execute(empty.on_conflict_do_nothing())
    return conn.execute(
        select(trail_digest_heads)
        .where(trail_digest_heads.c.trail_id == trail_id, trail_digest_heads.c.location == location)
        .with_for_update()
    ).one()


def purge(rt: Runtime) -> int:
    """Forget digests fixed more than a day ago whose batches are delivered (chain heads stay). A batch still
    waiting keeps its digest however old, or its retry would chain a second one and leave a gap where the first
    was never stored."""
    waiting = select(trail_batches.c.id).where(trail_batches.c.delivered_ms.is_(None))
    with rt.db.transaction() as conn:
        return conn.execute(
            delete(trail_digests).where(
                trail_digests.c.created_ms < clock.now_ms() - KEEP_MS, trail_digests.c.batch_id.not_in(waiting)
            )
        ).rowcount


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
