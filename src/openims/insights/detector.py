"""The detector: reads committed events after its cursor, learns from them, opens and closes insights.

It runs off the write path, as a background job of `openims serve` (`insights_job`): an audited call never waits
for it. One process at a time detects, however many servers share the database: each round first takes (or
renews) the lease in the `insight_job` row, and every write of a round checks, in its own transaction, that the
lease and the cursor are still what the round read, so two detectors never both judge the same events.

Reading is done on a read connection and writing in one short transaction per batch, so on SQLite the detector
holds the write lock (every call's) only for as long as it takes to write what it found.

An event is read once it is SETTLE_MS old (transactions commit within that time of stamping their events), in
`events.seq` order. Windows (OPENIMS_INSIGHTS_WINDOW_SECONDS, default 60) are judged once closed and settled.

Settings (environment): OPENIMS_INSIGHTS_INTERVAL_SECONDS (how often a round runs, default 5) and
OPENIMS_INSIGHTS_WINDOW_SECONDS (the length of a window, default 60: rates are per minute). Time is
`openims.clock`'s, so tests may move it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from openims import clock
from openims.config import ConfigError
from openims.insights import catalogue, profiles, rates
from openims.insights.activity import COLUMNS, Activity
from openims.insights.record import (
    Finding,
    attributions,
    close_insight,
    count_into,
    open_insight,
    state_of,
    tally,
    touch,
)
from openims.principal import Principal
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.insights import insight_job, insight_types, insights

log = logging.getLogger("openims.insights")
JOB = "detector"
# Events a step reads; its write transaction (baselines, counts, insights) grows with it, and on SQLite every
# API call waits while it is open: 2,000 held it for 35-60 ms, 500 for about a quarter of that.
BATCH = 500
# Batches a round reads at most: a long history (an upgrade, a restore, a backlog) is caught up over several
# rounds instead of holding the serving process's CPU, and its event loop, for minutes.
ROUND_BATCHES = 40
LEASE_MS = 60_000
SETTLE_MS = 2_000
# After an outage, windows further back than this are not judged one by one (their events still count in
# the baseline).
MAX_CATCH_UP_WINDOWS = 120


@dataclass(frozen=True)
class Timing:
    interval_s: float = 5.0
    window_ms: int = 60_000

    @classmethod
    def from_env(cls) -> Timing:
        return cls(
            interval_s=_seconds("OPENIMS_INSIGHTS_INTERVAL_SECONDS", 5.0),
            window_ms=int(_seconds("OPENIMS_INSIGHTS_WINDOW_SECONDS", 60.0) * 1000),
        )


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0.1:
        raise ConfigError(f"{name} must be at least 0.1, got {raw}")
    return value


def enabled_types(conn: Connection, account_ids: set[str]) -> dict[str, set[str]]:
    """The insight types each account has switched on (EnableInsight)."""
    found: dict[str, set[str]] = defaultdict(set)
    if account_ids:
        rows = conn.execute(
            select(insight_types.c.account_id, insight_types.c.insight_type).where(
                insight_types.c.account_id.in_(sorted(account_ids)), insight_types.c.enabled.is_(True)
            )
        )
        for r in rows:
            found[r.account_id].add(r.insight_type)
    return found


def _open(conn: Connection, kinds: tuple[str, ...]) -> list[Any]:
    return list(conn.execute(select(insights).where(insights.c.open.is_(True), insights.c.insight_type.in_(kinds))))


def _principal(conn: Connection, event_id: str) -> Principal | None:
    """The identity an event shows acting, for the insight about it."""
    body = conn.execute(select(events.c.body).where(events.c.event_id == event_id)).scalar()
    if body is None:
        return None
    ui = json.loads(body).get("userIdentity") or {}
    return Principal(
        ui.get("accountId", ""),
        ui.get("type", ""),
        ui.get("principalId", ""),
        ui.get("userName", ""),
        ui.get("accessKeyId", ""),
    )


class Detector:
    def __init__(self, rt: Runtime, timing: Timing | None = None, owner: str | None = None) -> None:
        self.rt = rt
        self.timing = timing or Timing.from_env()
        self.owner = owner or f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def run_once(self) -> None:
        """One round: take the lease, read every settled event, judge closed windows, end quiet insights."""
        if not self.claim():
            return
        for _ in range(ROUND_BATCHES):
            if not self.step():
                break
        else:
            return  # still catching up: windows are judged once every settled event has been read
        self.judge_windows()
        self.end_quiet()

    # --- the lease and the cursor ---

    def claim(self) -> bool:
        """Take the lease if it is free or ours (renewing it); False while another process holds it."""
        now = clock.now_ms()
        with self.rt.db.transaction() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(insight_job).values(name=JOB).on_conflict_do_nothing())
            taken = conn.execute(
                update(insight_job)
                .where(
                    insight_job.c.name == JOB,
                    (insight_job.c.lease_until_ms < now) | (insight_job.c.lease_owner == self.owner),
                )
                .values(lease_owner=self.owner, lease_until_ms=now + LEASE_MS)
            ).rowcount
        return bool(taken)

    def _job(self, conn: Connection, lock: bool = False) -> Any:
        query = select(insight_job).where(insight_job.c.name == JOB)
        return conn.execute(query.with_for_update() if lock else query).one()

    def _still_mine(self, conn: Connection, read: Any) -> bool:
        """In a writing transaction: the lease is ours and nobody moved the job on since `read`."""
        now = self._job(conn, lock=True)
        return bool(
            now.lease_owner == self.owner
            and now.cursor_seq == read.cursor_seq
            and now.evaluated_ms == read.evaluated_ms
        )

    # --- reading events ---

    def step(self) -> bool:
        """Judge the next batch of settled events after the cursor; True when more may be waiting."""
        horizon = clock.now_ms() - SETTLE_MS
        with self.rt.db.read() as conn:
            job = self._job(conn)
            rows = conn.execute(
                select(*COLUMNS).where(events.c.seq > job.cursor_seq).order_by(events.c.seq).limit(BATCH)
            )
            batch: list[Activity] = []
            for row in rows:
                a = Activity.of(row)
                if a.event_ms > horizon:
                    break
                batch.append(a)
            if not batch:
                return False
            learned = profiles.Profiles(conn, batch)
            enabled = enabled_types(conn, {a.account_id for a in batch})
            open_rows = {
                (r.account_id, r.insight_type, r.insight_object): r for r in _open(conn, (catalogue.IP, catalogue.AK))
            }
            states = {r.id: state_of(r) for r in open_rows.values()}
            seen: dict[str, list[dict[str, str]]] = defaultdict(list)
            last: dict[str, int] = {}
            new: dict[tuple[str, str, str], Finding] = {}
            for a in batch:
                if a.is_insight:
                    continue
                for key, row in open_rows.items():
                    if key[0] == a.account_id and profiles.matches(a, states[row.id].get("match") or {}):
                        seen[row.id].append(a.described())
                        last[row.id] = max(last.get(row.id, 0), a.event_ms)
                for f in new.values():  # opened by an earlier event of this batch
                    if f.account_id == a.account_id and profiles.matches(a, f.match):
                        count_into(f.tally, a.described())
                for f in profiles.judge(a, learned):
                    key = (f.account_id, f.insight_type, f.insight_object[:200])
                    if f.insight_type not in enabled.get(a.account_id, ()) or key in open_rows or key in new:
                        continue
                    f.principal = _principal(conn, a.event_id)
                    f.tally = tally([a.described()])
                    # Its own attributions (IpInsight: the key's usual addresses), then the event's others.
                    given = {x["attribute"] for x in f.attributions}
                    f.attributions += [x for x in attributions(f.tally, 1.0) if x["attribute"] not in given]
                    new[key] = f
            counts = rates.count(batch, self.timing.window_ms)
        with self.rt.db.transaction() as conn:
            if not self._still_mine(conn, job):
                return False
            learned.flush(conn)
            rates.add_counts(conn, counts)
            for f in new.values():
                open_insight(self.rt, conn, f)
            for row in open_rows.values():
                if row.id in seen:
                    touch(conn, row, states[row.id], last[row.id], seen[row.id])
            conn.execute(update(insight_job).where(insight_job.c.name == JOB).values(cursor_seq=batch[-1].seq))
        return len(batch) == BATCH

    # --- judging windows ---

    def judge_windows(self) -> None:
        """Judge every window closed and settled since the last one judged (none before the first round)."""
        w = self.timing.window_ms
        closed = (clock.now_ms() - SETTLE_MS) // w * w  # windows starting before this are over
        with self.rt.db.read() as conn:
            start = self._job(conn).evaluated_ms
        if start == 0:
            start = closed  # a new detector judges from now on; the events before are its baseline
        start = max(start, closed - MAX_CATCH_UP_WINDOWS * w)
        for window in range(start, closed, w):
            if not self._judge_window(window):
                return
        self._set_evaluated(closed)

    def _set_evaluated(self, value: int) -> None:
        """Windows before `value` are judged (if the lease is still ours)."""
        with self.rt.db.transaction() as conn:
            conn.execute(
                update(insight_job)
                .where(insight_job.c.name == JOB, insight_job.c.lease_owner == self.owner)
                .values(evaluated_ms=value)
            )

    def _judge_window(self, window: int) -> bool:
        w = self.timing.window_ms
        with self.rt.db.read() as conn:
            job = self._job(conn)
            open_rows = {(r.account_id, r.insight_type, r.insight_object): r for r in _open(conn, catalogue.RATE_TYPES)}
            states = {r.id: state_of(r) for r in open_rows.values()}
            candidates = rates.over_minimum(conn, window)
            enabled = enabled_types(conn, {r.account_id for r in candidates})
            starts: list[Finding] = []
            going_on: set[str] = set()
            for c in candidates:
                insight_type, minimum = catalogue.METRICS[c.metric]
                if c.count < minimum:
                    continue
                existing = open_rows.get((c.account_id, insight_type, (c.subject or c.account_id)[:200]))
                if existing is not None:
                    if c.count >= states[existing.id]["threshold"]:
                        going_on.add(existing.id)
                    continue
                if insight_type not in enabled.get(c.account_id, ()):
                    continue
                base = rates.baseline(conn, c.account_id, c.metric, c.subject, window, w)
                threshold = base.threshold(minimum)
                if c.count >= threshold:
                    starts.append(rates.start_finding(conn, c, base, threshold, w))
            ends = []
            for row in open_rows.values():
                if row.id in going_on:
                    continue
                state = states[row.id]
                metric, subject = state["metric"]
                total = rates.counted(conn, row.account_id, metric, subject, row.start_ms, window)
                base = rates.Baseline(state["statistics"]["baseline"]["average"], 0.0)
                stats = rates.statistics(base, total, row.start_ms, window, w)
                counts = rates.activity_tally(conn, row.account_id, metric, subject, row.start_ms, window)
                ends.append((row, state, stats, attributions(counts, max(1, (window - row.start_ms) // w))))
        if not starts and not ends and not going_on:
            return True  # nothing to write: the window judged is recorded with the last (judge_windows)
        with self.rt.db.transaction() as conn:
            if not self._still_mine(conn, job):
                return False
            for f in starts:
                open_insight(self.rt, conn, f)
            for row, state, stats, attrs in ends:
                close_insight(self.rt, conn, row, state, window, stats, attrs)
            for row in open_rows.values():
                if row.id in going_on:
                    touch(conn, row, states[row.id], window + w, [])
            conn.execute(update(insight_job).where(insight_job.c.name == JOB).values(evaluated_ms=window + w))
        return True

    # --- ending IpInsight and AkInsight ---

    def end_quiet(self) -> None:
        """End the IpInsight and AkInsight whose unusual activity has not recurred for QUIET_WINDOWS windows, or
        that have been open a day (by then their activity is part of the baseline)."""
        w = self.timing.window_ms
        now = clock.now_ms() - SETTLE_MS
        quiet = catalogue.QUIET_WINDOWS * w
        with self.rt.db.read() as conn:
            job = self._job(conn)
            due = [
                r
                for r in _open(conn, (catalogue.IP, catalogue.AK))
                if r.activity_ms + quiet <= now or r.start_ms + catalogue.LEARNING_MS <= now
            ]
        if not due:
            return
        with self.rt.db.transaction() as conn:
            if not self._still_mine(conn, job):
                return
            for row in due:
                state = state_of(row)
                at = min(row.activity_ms + quiet, row.start_ms + catalogue.LEARNING_MS)
                windows = max(1, (row.activity_ms - row.start_ms) // w + 1)
                count = max(1, int(state.get("count", 1)))
                stats = {
                    **state["statistics"],
                    "insight": {"average": round(count / windows, 4)},
                    "insightDuration": max(1, (row.activity_ms - row.start_ms) // 60_000),
                    "insightCount": count,
                }
                tallied = {k: Counter(v) for k, v in state.get("tally", {}).items()}
                close_insight(self.rt, conn, row, state, at, stats, attributions(tallied, float(windows)))


async def insights_job(rt: Runtime) -> None:
    """The `openims serve` background job: a detector round every OPENIMS_INSIGHTS_INTERVAL_SECONDS."""
    detector = Detector(rt)
    while True:
        try:
            await run_in_threadpool(detector.run_once)
        except Exception:  # keep serving; the cursor has not moved, so the next round retries
            log.exception("insight detection failed")
        await asyncio.sleep(detector.timing.interval_s)
