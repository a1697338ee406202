"""The alert deliverer: claims due alerts and sends each to every destination of its rule that does not have
it yet, retrying with capped exponential backoff while a destination fails (an outage delays an alert, never
drops it). It runs inside `openims serve` (unless `OPENIMS_SERVE_DELIVERY=false`) and in `openims deliver`.

Latency: workers look for due alerts every `POLL_S`, so an alert leaves within about that time of its event's
commit. `OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS` caps the retry delay, as for trails.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from sqlalchemy import select

from openims import clock
from openims.alerts import queue
from openims.alerts.send import Destinations
from openims.delivery.batch import DeliveryError
from openims.delivery.deliverer import STOP_GRACE_S, _env_number, serve_in_thread
from openims.runtime import Runtime
from openims.store.tables.alerts import alert_rules

log = logging.getLogger("openims.alerts")
POLL_S = 0.2
WORKERS = 2
# Alerts claimed at once by a worker: one write transaction to claim them and one to record the outcomes.
BATCH = 10


class AlertDeliverer:
    """One process's alert deliverer: `workers` threads claiming and sending alerts."""

    def __init__(self, rt: Runtime, workers: int = WORKERS, owner: str | None = None) -> None:
        self.rt = rt
        self.workers = workers
        self.cap_ms = int(_env_number("OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS", 30, 1) * 1000)
        self.owner = owner or f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.destinations = Destinations(rt.settings, rt.master_key)

    def deliver_one(self) -> bool:
        """Claim the due alerts (up to BATCH) and try each once; False when none was due."""
        now = clock.now_ms()
        if not queue.has_claimable(self.rt.db, now):
            return False
        claimed = queue.claim(self.rt.db, self.owner, now, BATCH)
        if not claimed:
            return False
        rule_ids = {c.rule_id for c in claimed if c.rule_id}
        with self.rt.db.read() as conn:
            rules = {r.id: r for r in conn.execute(select(alert_rules).where(alert_rules.c.id.in_(rule_ids)))}
        # No attempt may outlast the lease: past this, the rest go back to the queue untried.
        last_start = time.monotonic() + (queue.LEASE_MS - queue.ATTEMPT_MAX_MS) / 1000 - 5
        outcomes = [
            self._attempt(c, rules.get(c.rule_id or ""))
            if time.monotonic() < last_start
            else queue.Outcome(c, [], {}, released=True)
            for c in claimed
        ]
        queue.finish(self.rt.db, self.owner, outcomes, clock.now_ms(), self.cap_ms)
        return True

    def _attempt(self, claimed: queue.Claim, rule: Any) -> queue.Outcome:
        """Send one alert to each destination of its rule that does not have it yet."""
        if rule is None:
            return queue.Outcome(claimed, [], {}, abandoned="not delivered: its rule was deleted")
        destinations = self.destinations.of(rule)
        errors: dict[str, str | None] = {}
        for destination in destinations:
            if destination.kind in claimed.done:
                continue
            try:
                destination.deliver(claimed.body)
                errors[destination.kind] = None
            except DeliveryError as exc:
                errors[destination.kind] = str(exc)
            except Exception as exc:  # a sender bug must not stop the loop; its message may not be safe to show
                log.exception("unexpected failure delivering alert %s to %s", claimed.alert_id, destination.label)
                errors[destination.kind] = f"{destination.label}: internal error ({type(exc).__name__})"
        outcome = queue.Outcome(claimed, [d.kind for d in destinations], errors)
        if not outcome.complete:
            log.warning(
                "alert %s of rule %s not delivered to %s; will retry",
                claimed.alert_id,
                rule.name,
                "; ".join(f"{k}: {e}" for k, e in errors.items() if e),
            )
        return outcome

    def drain(self) -> None:
        """Try every alert due now once (tests and `openims deliver --once`)."""
        while self.deliver_one():
            pass

    def run(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=self._worker, args=(stop,), name=f"openims-alerts-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        log.info("alert deliverer %s running (%d workers)", self.owner, self.workers)
        stop.wait()
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if not self.deliver_one():
                    stop.wait(POLL_S)
            except Exception:  # a database outage, say: keep going once it is back
                log.exception("alert delivery failed; retrying in 1 s")
                stop.wait(1.0)


async def alert_job(rt: Runtime) -> None:
    """The `openims serve` background job: the alert deliverer in threads of its own, stopped with the server."""
    await serve_in_thread(rt, "alert", AlertDeliverer, "openims-alert-deliverer")
