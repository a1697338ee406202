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
from openims.api.app import create_app
from openims.credentials import key_usage
from openims.delivery import deliverer
from openims.integrity import sequencer
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


# The jobs `serve` runs beside the API, each fn(runtime) -> coroutine, cancelled when the server stops.
BACKGROUND: tuple[Callable[[Runtime], Coroutine[Any, Any, None]], ...] = (
    _housekeeping,  # maintenance.PURGERS every PURGE_INTERVAL_S
    key_usage.flusher,  # AccessKey last-used times, noted in memory at each call
    deliverer.delivery_job,  # trail delivery, unless OPENIMS_SERVE_DELIVERY=false
    sequencer.sequencer_job,  # appends committed events to the tamper-evident log, signs checkpoints
)


def build(rt: Runtime, background: bool = True) -> Starlette:
    app = create_app(rt)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job(rt)) for job in BACKGROUND] if background else []
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app.router.lifespan_context = lifespan
    return app


def serve(rt: Runtime, host: str, port: int) -> None:
    # uvicorn's access log prints query strings, which can hold passwords: we log our own redacted line instead.
    # uvicorn's proxy-headers middleware puts a trusted proxy's X-Forwarded-For/-Proto into the ASGI scope
    # (client, scheme), which is all the rest of the server reads; anyone else's are ignored.
    trusted = rt.settings.trusted_proxies
    uvicorn.run(
        build(rt),
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        server_header=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) or None,
    )
