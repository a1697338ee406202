"""The deliverer: forms batches from the trail outbox, claims them, delivers each to every target of its trail,
and records the outcome. It runs inside `openims serve` (unless `OPENIMS_SERVE_DELIVERY=false`) and on its
own with `openims deliver`; any number of deliverers may share one database.

Settings (environment): `OPENIMS_DELIVERY_BATCH_SECONDS` (how long events are gathered before a batch is
formed, default 1), `OPENIMS_DELIVERY_WORKERS` (batches delivered at once per process, default 4),
`OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS` (the cap of the exponential retry delay, default 30).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select

from openims import clock, jsontext
from openims.config import ConfigError
from openims.delivery import digests, history, outbox
from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.targets import OSS, Target, TargetFactory
from openims.integrity import coverage
from openims.runtime import Runtime
from openims.store.tables.trails import trails

log = logging.getLogger("openims.delivery")

TargetsFor = Callable[[Any], list[Target]]
STOP_GRACE_S = 8.0


def _env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw}")
    return value


def send(
    targets: list[Target],
    batch: Batch,
    done: frozenset[str],
    deliver: Callable[[Target, Batch], None] = Target.deliver,
) -> dict[str, str | None]:
    """Deliver `batch` to each target not in `done` with `deliver`: per target kind, None or why it failed (safe
    to show)."""
    errors: dict[str, str | None] = {}
    for target in targets:
        if target.kind in done:
            continue
        try:
            deliver(target, batch)
            errors[target.kind] = None
        except DeliveryError as exc:
            errors[target.kind] = str(exc)
        except Exception as exc:  # a sink bug must not stop the loop; its message may not be safe to show
            log.exception("unexpected failure delivering batch %s to %s", batch.batch_id, target.label)
            errors[target.kind] = f"{target.label}: internal error ({type(exc).__name__})"
    return errors


class Deliverer:
    """One process's deliverer: a batcher thread, `workers` delivery threads and a lease-renewal thread."""

    def __init__(
        self, rt: Runtime, workers: int | None = None, targets_for: TargetsFor | None = None, owner: str | None = None
    ) -> None:
        self.rt = rt
        self.workers = workers or int(_env_number("OPENIMS_DELIVERY_WORKERS", 4, 1))
        self.window_ms = int(max(0.0, rt.settings.delivery_batch_seconds) * 1000)
        self.cap_ms = int(_env_number("OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS", 30, 1) * 1000)
        # Poll often enough that a batch starts at most ~a fifth of the window after it is due.
        self.poll_s = min(0.25, max(0.05, self.window_ms / 5000))
        self.owner = owner or f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.factory = TargetFactory(rt.settings, rt.master_key)
        self.targets_for: TargetsFor = targets_for or self.factory.targets
        self._inflight: set[str] = set()
        self._inflight_lock = threading.Lock()
        self._wake = threading.Event()

    # --- one step of each kind, also used by tests and `openims deliver --once` ---

    def form_due(self, force: bool = False) -> int:
        """Form batches for every trail whose oldest queued event has waited the batch window; returns how many."""
        now = clock.now_ms()
        with self.rt.db.read() as conn:
            due = outbox.due_trails(conn, now if force else now - self.window_ms)
        formed = 0
        for trail_id in due:
            while True:
                size = outbox.form_batch(self.rt.db, trail_id, now)
                formed += size > 0
                if size < outbox.MAX_BATCH:
                    break
        return formed

    def deliver_one(self) -> bool:
        """Claim one due batch and deliver it; False when there was none."""
        now = clock.now_ms()
        with self.rt.db.read() as conn:
            if not outbox.has_claimable(conn, now):
                return False
        claimed = outbox.claim(self.rt.db, self.owner, now)
        if claimed is None:
            return False
        with self._inflight_lock:
            self._inflight.add(claimed.batch_id)
        try:
            self._deliver(claimed)
        finally:
            with self._inflight_lock:
                self._inflight.discard(claimed.batch_id)
        return True

    def _deliver(self, claimed: outbox.Claim) -> None:
        with self.rt.db.read() as conn:
            row = conn.execute(select(trails).where(trails.c.id == claimed.trail_id)).first()
            bodies = outbox.batch_events(conn, claimed.batch_id) if row is not None else []
        if row is None:
            return  # the trail was deleted: its batches went with it
        events = [jsontext.loads(body) for body in bodies]
        targets = self.targets_for(row)
        pending = [t for t in targets if t.kind not in claimed.done_targets]
        # Each record carries its event's place in the log, and a bucket's digest a checkpoint covering it.
        covered = _cover(self.rt, row.account_id, events, sign=any(t.kind == OSS for t in pending))
        batch = Batch(
            trail_name=row.name,
            account_id=row.account_id,
            region=self.rt.settings.region,
            batch_id=claimed.batch_id,
            events=events,
            leaves=covered.leaves,
        )
        errors = send(
            pending,
            batch,
            claimed.done_targets,
            # A bucket gets the event files, then their digest.
            lambda target, b: (
                digests.deliver(self.rt, row, target, b, covered) if target.kind == OSS else target.deliver(b)
            ),
        )
        complete = outbox.finish(
            self.rt.db, claimed, self.owner, [t.kind for t in targets], errors, clock.now_ms(), self.cap_ms
        )
        failed = {k: e for k, e in errors.items() if e}
        if failed:
            log.warning(
                "trail %s batch %s (%d events) not delivered to %s; will retry",
                row.name,
                claimed.batch_id,
                len(batch.events),
                "; ".join(f"{k}: {e}" for k, e in failed.items()),
            )
        elif complete:
            log.debug("trail %s batch %s delivered (%d events)", row.name, claimed.batch_id, len(batch.events))

    def deliver_history(self) -> bool:
        """Claim one due historic delivery job and deliver its next chunk; False when none was due."""
        job = history.claim(self.rt.db, self.owner, clock.now_ms())
        if job is None:
            return False
        history.step(self.rt.db, self.owner, job, self.targets_for, send, self.rt.settings.region, self.cap_ms)
        return True

    def drain(self) -> bool:
        """Deliver everything queued now, each batch (and each due history chunk) tried once; True when nothing
        is left undelivered."""
        self.form_due(force=True)
        while self.deliver_one():
            pass
        while self.deliver_history():
            pass
        with self.rt.db.read() as conn:
            return not outbox.has_undelivered(conn)

    # --- the long-running loop ---

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set."""
        threads = [
            threading.Thread(target=self._guard, args=(self._batcher, stop), name="openims-batcher", daemon=True),
            threading.Thread(target=self._guard, args=(self._renewer, stop), name="openims-lease", daemon=True),
            threading.Thread(target=self._guard, args=(self._historian, stop), name="openims-history", daemon=True),
        ]
        threads += [
            threading.Thread(target=self._guard, args=(self._worker, stop), name=f"openims-deliver-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        log.info(
            "trail deliverer %s running (%d workers, batch window %.1f s)",
            self.owner,
            self.workers,
            self.window_ms / 1000,
        )
        stop.wait()
        self._wake.set()
        # Do not hold up shutdown for a slow destination: a batch abandoned mid-delivery keeps its lease, and
        # another deliverer (or this one, restarted) delivers it again once the lease lapses.
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _guard(self, loop: Callable[[threading.Event], None], stop: threading.Event) -> None:
        """Run a loop, restarting it after an unexpected error (a database outage, say) instead of dying."""
        while not stop.is_set():
            try:
                loop(stop)
            except Exception:
                log.exception("trail delivery loop failed; restarting it in 1 s")
                stop.wait(1.0)

    def _batcher(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.form_due():
                self._wake.set()
            stop.wait(self.poll_s)

    def _worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.deliver_one():
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _historian(self, stop: threading.Event) -> None:
        # One thread: history jobs are rare and long, and must not hold up live delivery's workers.
        while not stop.is_set():
            if not self.deliver_history():
                stop.wait(max(self.poll_s, 0.5))

    def _renewer(self, stop: threading.Event) -> None:
        while not stop.wait(outbox.LEASE_MS / 3000):
            with self._inflight_lock:
                held = list(self._inflight)
            outbox.renew(self.rt.db, self.owner, held, clock.now_ms())


def _cover(rt: Runtime, account_id: str, events: list[dict[str, Any]], sign: bool) -> coverage.Coverage:
    """The events' leaves (and a checkpoint over them); without them, if the log cannot be advanced now, the
    batch is still delivered: the log catches up on its own, and delivery must not wait for it."""
    try:
        return coverage.cover(rt, account_id, [str(e.get("eventId")) for e in events], sign)
    except Exception:
        log.exception("could not place a batch's events in the tamper-evident log; delivering without leaves")
        return coverage.Coverage({}, None)


def serve_enabled() -> bool:
    return os.environ.get("OPENIMS_SERVE_DELIVERY", "true").strip().lower() not in ("0", "false", "no", "off")


def configuration_error(rt: Runtime) -> ConfigError | None:
    """Why this process could not run the deliverer (its settings), or None: every process checks, since any
    of them may come to lead (ops/leader.py)."""
    try:
        Deliverer(rt)
    except ConfigError as exc:
        return exc
    return None


async def delivery_job(rt: Runtime) -> None:
    """The `openims serve` background job: the deliverer in threads of its own, stopped with the server."""
    await serve_in_thread(rt, "trail", Deliverer, "openims-deliverer")


class _Runs(Protocol):
    def run(self, stop: threading.Event) -> None: ...


async def serve_in_thread(rt: Runtime, what: str, make: Callable[[Runtime], _Runs], thread_name: str) -> None:
    """Run `make(rt).run(stop)` in a thread of its own until cancelled, unless OPENIMS_SERVE_DELIVERY is false or
    its settings are wrong (then it says why and returns): the `serve` job of the trail and alert deliverers."""
    if not serve_enabled():
        log.info("%s delivery is off in this server (OPENIMS_SERVE_DELIVERY); run `openims deliver`", what)
        return
    try:
        deliverer = make(rt)
    except ConfigError as exc:
        log.error("%s delivery cannot start: %s", what, exc)
        return
    stop = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stop,), name=thread_name, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            await asyncio.sleep(1.0)
        log.error("the %s deliverer stopped unexpectedly", what)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, STOP_GRACE_S + 2)
