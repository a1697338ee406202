"""Prometheus metrics of one server: API requests, their latency, signature failures, the event counters of
ops/event_counts.py, and the trails' outbox depth and delivery lag, read from the database at scrape time.

Everything lives in a `CollectorRegistry` of this object, never in prometheus_client's global default
registry: each app has its own, and nothing is registered at import. Label values are bounded: actions come
from the action table (others are "Unknown"), results are error codes, which the code defines (and past
MAX_RESULTS distinct ones, "Other"), trails are those that exist.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_wsgi_server, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from openims import clock
from openims.ops.event_counts import EventCounter
from openims.signin import lockout
from openims.store.db import Database
from openims.store.tables.trails import trail_outbox, trails

log = logging.getLogger("openims.metrics")

# Codes of a request refused for its signature, key or timestamp (what `api/signing.py` checks), and replays.
SIGNATURE_CODES = frozenset(
    {
        "IncompleteSignature",
        "SignatureDoesNotMatch",
        "SignatureNonceUsed",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Format",
        "InvalidTimeStamp.Expired",
    }
)
MAX_RESULTS = 512
_SHARED = "PROMETHEUS_MULTIPROC_DIR"
_CODE = re.compile(r"[A-Za-z0-9.]{1,100}")


class Metrics:
    """The registry of one app and the metrics in it."""

    def __init__(self, db: Database, action_names: frozenset[str]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "openims_api_requests",
            "API requests answered, by action, result (an error code or Success) and signature version.",
            ["action", "result", "signature"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "openims_api_request_duration_seconds",
            "Time from receiving an API request to its answer, by action.",
            ["action"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "openims_signature_failures",
            "API requests refused for their signature, AccessKey, timestamp or a reused nonce, by error code.",
            ["code"],
            registry=self.registry,
        )
        for code in SIGNATURE_CODES:
            self.signature_failures.labels(code)
        self.events = EventCounter(
            self.registry,
            action_names,
            {
                "ram-user": lockout.RAM_USER.refusal("", True).strip(),
                "root": lockout.ROOT.refusal("", True).strip(),
            },
        )
        # What a scrape reads: this registry, or, when the workers of `serve --workers N` share their counters
        # (share_across_workers), every worker's counters summed, whichever worker answers.
        self.exposed = self.registry
        if os.environ.get(_SHARED):
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)  # type: ignore[no-untyped-call]
        self.exposed.register(TrailCollector(db))
        self._actions = action_names
        self._results: set[str] = set()
        self._lock = threading.Lock()

    def action_label(self, name: str) -> str:
        return name if name in self._actions else "Unknown"

    def observe_request(self, action: str, result: str, signature: str, seconds: float) -> None:
        label = self.action_label(action)
        self.requests.labels(label, self._result_label(result), signature).inc()
        self.latency.labels(label).observe(seconds)
        if result in SIGNATURE_CODES:
            self.signature_failures.labels(result).inc()

    def render(self) -> bytes:
        """The exposition text (reads the database for the trail metrics: call it off the event loop)."""
        return generate_latest(self.exposed)

    async def serve_port(self, host: str, port: int) -> None:
        """Serve the registry without a token on `host:port` until cancelled (a background job of `serve`).
        prometheus_client's small threaded HTTP server answers every path, /metrics included."""
        if not port:
            return
        try:
            httpd, _thread = start_wsgi_server(port, addr=host, registry=self.exposed)
        except OSError as exc:
            log.error("cannot serve metrics on %s:%d (%s): /metrics is not served there", host, port, exc.strerror)
            return
        log.info("serving metrics on http://%s:%d/metrics", host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(httpd.shutdown)
            httpd.server_close()

    def _result_label(self, code: str) -> str:
        if code in self._results:
            return code
        if safe_code(code) != code:
            return "Other"
        with self._lock:
            if len(self._results) >= MAX_RESULTS:
                return "Other"
            self._results.add(code)
        return code


def share_across_workers(directory: str) -> None:
    """In a worker of `serve --workers N`, before its app exists: its counters are kept in files in `directory`
    (prometheus_client's multiprocess mode), which a scrape of any worker sums."""
    os.environ[_SHARED] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def safe_code(code: str) -> str:
    """An error code as the code writes them (letters, digits, dots), or "Other"."""
    return code if _CODE.fullmatch(code) else "Other"


_TRAIL_BACKLOG = (
    select(
        trails.c.account_id,
        trails.c.name,
        func.count(trail_outbox.c.id).label("pending"),
        func.min(trail_outbox.c.created_ms).label("oldest_ms"),
    )
    .select_from(trails.outerjoin(trail_outbox, trail_outbox.c.trail_id == trails.c.id))
    .group_by(trails.c.id, trails.c.account_id, trails.c.name)
)


class TrailCollector(Collector):
    """Per trail, at scrape time: events queued and not yet delivered to all its targets (as
    `delivery.outbox.pending_count` counts them), and how long the oldest of them has waited."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        depth, lag = self._families()
        try:
            with self._db.read() as conn:
                rows = conn.execute(_TRAIL_BACKLOG).all()
        except SQLAlchemyError as exc:  # the database is down: the other metrics are still worth scraping
            log.warning("trail metrics unavailable: %s", exc.__class__.__name__)
            return []
        now = clock.now_ms()
        for row in rows:
            labels = [row.account_id, row.name]
            depth.add_metric(labels, row.pending)
            lag.add_metric(labels, max(0, now - row.oldest_ms) / 1000 if row.oldest_ms is not None else 0.0)
        return [depth, lag]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "openims_trail_outbox_depth",
                "Events queued for a trail and not yet delivered to all of its targets.",
                labels=["account", "trail"],
            ),
            GaugeMetricFamily(
                "openims_trail_delivery_lag_seconds",
                "Age of the oldest event queued for a trail and not yet delivered (0 when none waits).",
                labels=["account", "trail"],
            ),
        )
