"""`openims serve`: the HTTP server, with housekeeping (and, when configured, trail delivery) in the background."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from openims import maintenance
from openims.alerts import deliverer as alert_deliverer
from openims.api import limits, protocol
from openims.api.app import create_app
from openims.config import Settings
from openims.credentials import key_usage
from openims.delivery import deliverer
from openims.insights import detector
from openims.integrity import sequencer
from openims.ops import metrics
from openims.ops.leader import Job, Leadership
from openims.ops.operations import Operations
from openims.ops.workers import supervise
from openims.runtime import Runtime, open_runtime
from openims.store import wal

log = logging.getLogger("openims.server")
PURGE_INTERVAL_S = 600.0


async def _housekeeping(rt: Runtime) -> None:
    while True:
        for job in (maintenance.purge, maintenance.enforce, _optimize):
            try:
                await run_in_threadpool(job, rt)
            except Exception:  # keep serving; the next round retries
                log.exception("housekeeping failed")
        await asyncio.sleep(PURGE_INTERVAL_S)


def _optimize(rt: Runtime) -> None:
    rt.db.optimize()


# Jobs each process runs for itself: they work on that process's memory.
EVERY_PROCESS: tuple[Job, ...] = (
    key_usage.flusher,  # AccessKey last-used times, noted in memory at each call
)
# Jobs that run once across all the processes serving a database, in the one that leads (ops/leader.py). Beside
# them the leader serves the metrics port (OPENIMS_METRICS_PORT), if set.
ONCE: tuple[Job, ...] = (
    _housekeeping,  # maintenance.PURGERS and ENFORCERS every PURGE_INTERVAL_S, and planner statistics
    deliverer.delivery_job,  # trail delivery, unless OPENIMS_SERVE_DELIVERY=false
    sequencer.sequencer_job,  # appends committed events to the tamper-evident log, signs checkpoints
    wal.checkpointer,  # SQLite: copies the WAL into the database off the request path
    detector.insights_job,  # reads committed events after its cursor, opens and closes insights (one server at a time)
    alert_deliverer.alert_job,  # alert delivery, unless OPENIMS_SERVE_DELIVERY=false
)


def build(rt: Runtime, background: bool = True, host: str = "127.0.0.1") -> Starlette:
    """The app with its background jobs; `host` is the address `serve` listens on, which the metrics port shares."""
    app = create_app(rt)
    ops: Operations = app.state.ops

    async def metrics_port(rt: Runtime) -> None:
        await ops.metrics.serve_port(host, rt.settings.metrics_port)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if background:
            rt.db.checkpoint_in_background()
            await run_in_threadpool(rt.db.optimize)
            leadership = Leadership(rt, (*ONCE, metrics_port))
            tasks = [asyncio.create_task(job(rt)) for job in EVERY_PROCESS]
            tasks.append(asyncio.create_task(leadership.run()))
            if deliverer.serve_enabled():
                # /readyz reports a deliverer that cannot start in this process, or that has stopped where it ran.
                broken = deliverer.configuration_error(rt) is not None
                ops.readiness.expect_delivery(lambda: broken or leadership.stopped(deliverer.delivery_job))
        # What start-up made (modules, the schema, compiled statements) lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it, which stopped the event loop for 130-150 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            ops.close()

    app.router.lifespan_context = lifespan
    return app


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve on host:port in this process (`workers` 1) or in `workers` processes sharing one socket."""
    if workers == 1:
        rt = open_runtime(settings)
        try:
            uvicorn.run(_asgi(rt, host), host=host, port=port, **_uvicorn_options(settings, workers))
        finally:
            rt.close()
        return
    sock = uvicorn.Config("openims", host=host, port=port, log_config=None).bind_socket()
    counters = tempfile.TemporaryDirectory(prefix="openims-metrics-")

    def worker(sock: socket.socket) -> None:
        metrics.share_across_workers(counters.name)
        rt = open_runtime(settings)
        try:
            config = uvicorn.Config(_asgi(rt, host), **_uvicorn_options(settings, workers))
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            rt.close()

    with counters:
        supervise(workers, sock, worker)


def _asgi(rt: Runtime, host: str) -> ASGIApp:
    return limits.CompleteBodies(build(rt, host=host), rt.settings.body_timeout_s, protocol.MAX_BODY)


def _uvicorn_options(s: Settings, workers: int) -> dict[str, Any]:
    # uvicorn's access log prints query strings, which can hold passwords: we log our own redacted line instead.
    # uvicorn's proxy-headers middleware puts a trusted proxy's X-Forwarded-For/-Proto into the ASGI scope
    # (client, scheme), which is all the rest of the server reads; anyone else's are ignored.
    # log_config=None: uvicorn adds no handlers or formats of its own, so its lines take ours (logs.configure).
    # The head deadline and the connection cap are in the HTTP protocol (limits.guarded_protocol), the body
    # deadline in front of the application (limits.CompleteBodies): see docs/server-limits.md. The cap is the
    # server's: each of the workers takes its share.
    per_worker = max(1, s.max_connections // workers)
    limits.ensure_fd_limit(per_worker)
    trusted = s.trusted_proxies
    return {
        "http": limits.guarded_protocol(s.header_timeout_s, s.keepalive_timeout_s, per_worker),
        "access_log": False,
        "log_config": None,
        "log_level": "info",
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": list(trusted) or None,
    }
