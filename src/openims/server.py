"""`openims serve`: the HTTP server, with housekeeping (and, when configured, trail delivery) in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from openims import maintenance
from openims.alerts import deliverer as alert_deliverer
from openims.api import limits, protocol
from openims.api.app import create_app
from openims.credentials import key_usage
from openims.delivery import deliverer
from openims.integrity import sequencer
from openims.ops.operations import Operations
from openims.runtime import Runtime

log = logging.getLogger("openims.server")
PURGE_INTERVAL_S = 600.0


async def _housekeeping(rt: Runtime) -> None:
    while True:
        for job in (maintenance.purge, maintenance.enforce):
            try:
                await run_in_threadpool(job, rt)
            except Exception:  # keep serving; the next round retries
                log.exception("housekeeping failed")
        await asyncio.sleep(PURGE_INTERVAL_S)


# The jobs `serve` runs beside the API, each fn(runtime) -> coroutine, cancelled when the server stops. Beside
# them `build` starts the app's own metrics listener (OPENIMS_METRICS_PORT), which serves that app's registry.
BACKGROUND: tuple[Callable[[Runtime], Coroutine[Any, Any, None]], ...] = (
    _housekeeping,  # maintenance.PURGERS every PURGE_INTERVAL_S
    key_usage.flusher,  # AccessKey last-used times, noted in memory at each call
    deliverer.delivery_job,  # trail delivery, unless OPENIMS_SERVE_DELIVERY=false
    sequencer.sequencer_job,  # appends committed events to the tamper-evident log, signs checkpoints
    alert_deliverer.alert_job,  # alert delivery, unless OPENIMS_SERVE_DELIVERY=false
)


def build(rt: Runtime, background: bool = True, host: str = "127.0.0.1") -> Starlette:
    """The app with its background jobs; `host` is the address `serve` listens on, which the metrics port shares."""
    app = create_app(rt)
    ops: Operations = app.state.ops

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if background:
            tasks = [asyncio.create_task(job(rt)) for job in BACKGROUND]
            # /readyz reports a deliverer that should run here and has stopped.
            if deliverer.serve_enabled():
                ops.readiness.expect_delivery(tasks[BACKGROUND.index(deliverer.delivery_job)])
            tasks.append(asyncio.create_task(ops.metrics.serve_port(host, rt.settings.metrics_port)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            ops.close()

    app.router.lifespan_context = lifespan
    return app


def serve(rt: Runtime, host: str, port: int) -> None:
    # uvicorn's access log prints query strings, which can hold passwords: we log our own redacted line instead.
    # uvicorn's proxy-headers middleware puts a trusted proxy's X-Forwarded-For/-Proto into the ASGI scope
    # (client, scheme), which is all the rest of the server reads; anyone else's are ignored.
    # log_config=None: uvicorn adds no handlers or formats of its own, so its lines take ours (logs.configure).
    # The head deadline and the connection cap are in the HTTP protocol (limits.guarded_protocol), the body
    # deadline in front of the application (limits.CompleteBodies): see docs/server-limits.md.
    s = rt.settings
    limits.ensure_fd_limit(s.max_connections)
    trusted = s.trusted_proxies
    uvicorn.run(
        limits.CompleteBodies(build(rt, host=host), s.body_timeout_s, protocol.MAX_BODY),
        host=host,
        port=port,
        http=limits.guarded_protocol(s.header_timeout_s, s.keepalive_timeout_s, s.max_connections),
        access_log=False,
        log_config=None,
        log_level="info",
        server_header=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
    )
