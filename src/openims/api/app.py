"""The ASGI application: the RPC endpoint on `/`, the console under `/console`, and the operations endpoints
`/healthz`, `/readyz` and `/metrics` (ops/operations.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from openims import ids
from openims.actions.table import ACTIONS
from openims.api import protocol
from openims.api.dispatch import begin, dispatch, record_unreadable
from openims.api.group_commit import GroupCommit
from openims.console.mount import mount as mount_console
from openims.credentials import key_usage, network_policy
from openims.errors import ApiError, internal_error
from openims.oauth.routes import routes as oauth_routes
from openims.ops import request_log
from openims.ops.operations import Operations
from openims.runtime import Runtime

log = logging.getLogger("openims.api")

# Run in this order once a request's signature is proven: a key's network policy refuses a request from outside
# it first, so a refused request is not counted as a use of the key.
KEY_CHECKS = (network_policy.check_source, key_usage.note_use)


def create_app(rt: Runtime, ops: Operations | None = None) -> Starlette:
    """The app, with its operations state (`ops`, made here when not given; kept as `app.state.ops`)."""
    ops = ops or Operations(rt, frozenset(a.name for a in ACTIONS.all()))

    commits = GroupCommit(rt.db)

    async def call(req: protocol.RpcRequest) -> dict[str, Any]:
        action = ACTIONS.lookup(req.version, req.action)
        # SQLite serializes writers anyway: running the call on the event loop saves a thread hand-off and the
        # GIL contention that comes with it (measured: about a third more requests/s), and lets the calls of one
        # loop turn share a commit (api/group_commit.py). Calls with slow work (a prepare step: a network fetch,
        # password hashing), and every call on PostgreSQL, run in the thread pool, a transaction each.
        if rt.db.is_sqlite and not (action and action.prepare):
            pending = begin(rt, req, KEY_CHECKS)
            try:
                return await commits.commit(pending.work)
            except Exception as exc:  # noqa: BLE001 - answered as the call's own failure, audited by `fail`
                raise pending.fail(exc) from None
        return await run_in_threadpool(dispatch, rt, req, KEY_CHECKS)

    async def rpc(request: Request) -> Response:
        started = time.perf_counter()
        req = None
        try:
            req = await protocol.read_request(request)
            body = await call(req)
            return request_log.finished(ops.metrics, request, req, protocol.render(body, req), None, started)
        except ApiError as err:
            if isinstance(err, protocol.Unreadable):
                req = err.request
                await run_in_threadpool(record_unreadable, rt, err)
            request_id = req.request_id if req else ""
            response = protocol.render_error(err, req, request_id or _new_id(), request.headers.get("host", ""))
            return request_log.finished(ops.metrics, request, req, response, err, started)
        except ClientDisconnect:
            # Gone while sending its body: nobody to answer, nothing was called, one line is enough.
            log.info("client %s left before its request body was complete", protocol.client_ip(request.scope))
            return Response(status_code=400)
        except Exception:
            log.exception("unexpected failure before dispatch")
            fault = internal_error()
            response = protocol.render_error(fault, req, _new_id(), request.headers.get("host", ""))
            return request_log.finished(ops.metrics, request, req, response, fault, started)

    async def no_route(request: Request, exc: Exception) -> Response:
        """Another path, or another method on `/`: still Alibaba's envelope (the console has its own pages)."""
        if getattr(exc, "status_code", 404) == 405:
            err = ApiError(
                "UnsupportedHTTPMethod",
                f"The HTTP method {request.method} is not supported: send GET or POST to /.",
                405,
            )
        else:
            err = ApiError(
                "InvalidURI.NotFound",
                f"There is no API at {request.url.path}: OpenIMS serves its APIs on / "
                "(RPC style, as the SDKs call them) and the console under /console.",
                404,
            )
        return protocol.render_error(err, None, _new_id(), request.headers.get("host", ""))

    routes = [
        Route("/", rpc, methods=["GET", "POST"]),
        # Unsigned and unaudited: probes and scrapes are not API calls (ops/operations.py).
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics_endpoint, methods=["GET"]),
        # OAuth 2.0 / OpenID Connect for applications, on Alibaba Cloud's paths (docs/oauth.md).
        *oauth_routes(rt),
    ]
    app = Starlette(routes=routes, exception_handlers={404: no_route, 405: no_route})
    app.state.runtime = rt
    app.state.ops = ops
    mount_console(app, rt)
    return app


def _new_id() -> str:
    return ids.request_id()
