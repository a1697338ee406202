"""The operations state of one app, created where the app is built (`api.app.create_app`): its metrics
registry, its readiness checker, and the endpoints that serve them.

`GET /healthz` answers 200 while the process serves at all. `GET /readyz` answers 200 `{"status":"ready"}` or
503 `{"status":"not-ready","reasons":[...]}` (ops/health.py). `GET /metrics` answers the Prometheus text
format, on the API port only to `Authorization: Bearer <OPENIMS_METRICS_TOKEN>` (401 without it or with
another token; 404 when no token is set), and without a token on OPENIMS_METRICS_PORT when that is set.
None of them is an API call: no signature, no event.
"""

from __future__ import annotations

import hmac
import json

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from openims import ids
from openims.api import protocol
from openims.errors import ApiError
from openims.ops.health import Readiness
from openims.ops.metrics import Metrics
from openims.runtime import Runtime

_NO_STORE = {"cache-control": "no-store"}


class Operations:
    def __init__(self, rt: Runtime, action_names: frozenset[str]) -> None:
        self.metrics = Metrics(rt.db, action_names)
        self.readiness = Readiness(rt)
        self._token = rt.settings.metrics_token.encode()
        self.metrics.events.attach(rt.db.engine)

    def close(self) -> None:
        self.metrics.events.detach()

    async def healthz(self, request: Request) -> Response:
        return _json(200, {"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        reasons = await run_in_threadpool(self.readiness.reasons)
        if reasons:
            return _json(503, {"status": "not-ready", "reasons": reasons})
        return _json(200, {"status": "ready"})

    async def metrics_endpoint(self, request: Request) -> Response:
        if not self._token:
            raise HTTPException(404)  # as any other unknown path answers
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            err = ApiError("Unauthorized", "Send Authorization: Bearer <OPENIMS_METRICS_TOKEN> to read /metrics.", 401)
            response = protocol.render_error(err, None, ids.request_id(), request.headers.get("host", ""))
            response.headers["www-authenticate"] = 'Bearer realm="openims-metrics"'
            return response
        body = await run_in_threadpool(self.metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json", headers=_NO_STORE
    )
