"""Counts of the audit events a server writes, taken where every event goes through (`audit.event.record`) and
counted when the transaction holding them commits: the event of a call that rolls back is not counted.

`record()` is handed only a connection, so the counter is reached through the connection rather than through
a module-level registry. An `EventCounter` attached to a database engine (by the app that owns the counter, see
ops/operations.py) gives each transaction of that engine, as it begins, an empty list in the connection's
`info`; `observe()` appends to that list when there is one and does nothing otherwise (the CLI and other tools
record events uncounted), and the counter takes the list when the transaction commits, or drops it when it
rolls back. The commit event fires just before the database commits, so an event whose commit itself fails
(a disk that fills at that very moment) is still counted.

A leaf on purpose: `audit.event` imports it, so it imports nothing of OpenIMS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

PENDING = "openims.ops.pending_events"
# eventRW, errorCode ("" on success), eventName, errorMessage ("" on success): all the counters need.
Pending = tuple[str, str, str, str]
RW = ("Read", "Write")
DENIED = "NoPermission"
SIGNIN = "ConsoleSignin"


def observe(conn: Connection, ev: Mapping[str, Any]) -> None:
    """Note an event just inserted in `conn`'s transaction, for the counter attached to its engine (if any)."""
    pending = conn.info.get(PENDING)
    if pending is not None:
        code = ev.get("errorCode") or ""
        pending.append(
            (ev.get("eventRW", ""), code, ev.get("eventName", ""), ev.get("errorMessage", "") if code else "")
        )


class EventCounter:
    """The event counters of one app's registry, fed by the transactions of one engine."""

    def __init__(self, registry: CollectorRegistry, action_names: frozenset[str], lockouts: Mapping[str, str]) -> None:
        """`action_names` bound the `action` label (others count as "Unknown"); `lockouts` maps an identity
        kind to the text a ConsoleSignin refusal carries when that failure locked sign-in."""
        self.written = Counter(
            "openims_events_written",
            "Audit events written (committed), by eventRW and outcome (success or failure of the call).",
            ["rw", "outcome"],
            registry=registry,
        )
        self.denials = Counter(
            "openims_denials",
            "Calls refused with NoPermission (RAM policies, self-service rules, AccessKey network policies).",
            ["action"],
            registry=registry,
        )
        self.lockouts = Counter(
            "openims_console_signin_lockouts",
            "Console sign-in failures that locked an identity out (too many wrong passwords or MFA codes).",
            ["identity"],
            registry=registry,
        )
        for rw in (*RW, "Other"):
            for outcome in ("success", "failure"):
                self.written.labels(rw, outcome)
        for identity in lockouts:
            self.lockouts.labels(identity)
        self._actions = action_names
        self._lockouts = dict(lockouts)
        self._engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        self._engine = engine

    def detach(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            event.remove(engine, "begin", self._begin)
            event.remove(engine, "commit", self._commit)
            event.remove(engine, "rollback", self._rollback)

    def count(self, rw: str, code: str, name: str, message: str) -> None:
        self.written.labels(rw if rw in RW else "Other", "failure" if code else "success").inc()
        if code == DENIED:
            self.denials.labels(name if name in self._actions else "Unknown").inc()
        elif code and name == SIGNIN:
            for identity, marker in self._lockouts.items():
                if marker in message:
                    self.lockouts.labels(identity).inc()
                    break

    def _begin(self, conn: Connection) -> None:
        conn.info[PENDING] = []

    def _commit(self, conn: Connection) -> None:
        pending: list[Pending] | None = conn.info.pop(PENDING, None)
        for item in pending or ():
            self.count(*item)

    def _rollback(self, conn: Connection) -> None:
        conn.info.pop(PENDING, None)
