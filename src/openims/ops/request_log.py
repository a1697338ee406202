"""One log line per API request, by logger "openims.api" at INFO, and the request's metrics.

The line's fields go to the log record as `extra` (request_id, action, version, principal, result, status,
duration_ms, source_ip), which the JSON log format writes as they are; the plain message reads
`GetUser 200 Success 3.1 ms key=LTAI... ip=127.0.0.1 request=...`. Neither query strings nor bodies are
logged (they can hold passwords), and every field taken from the request is reduced to the characters its
kind of value has, so no caller can forge a log line.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.requests import Request
from starlette.responses import Response

from openims.api import protocol
from openims.api.signing import claimed_key_id
from openims.errors import ApiError
from openims.ops.metrics import Metrics, safe_code

log = logging.getLogger("openims.api")

_ACTION = re.compile(r"[A-Za-z0-9]{1,64}")
_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def signature_version(req: protocol.RpcRequest | None) -> str:
    """v3 or v2 as `api/signing.py` would verify the request, or none when it is not signed at all."""
    if req is None:
        return "none"
    if "authorization" in req.headers:
        return "v3"
    return "v2" if "Signature" in req.params else "none"


def finished(
    metrics: Metrics,
    request: Request,
    req: protocol.RpcRequest | None,
    response: Response,
    err: ApiError | None,
    started: float,
) -> Response:
    """Log and count an answered API request; returns `response`. Never raises: a request is answered
    whatever happens to its log line."""
    try:
        seconds = time.perf_counter() - started
        result = err.code if err is not None else "Success"
        action = req.action if req is not None and _ACTION.fullmatch(req.action) else "Unknown"
        metrics.observe_request(action, result, signature_version(req), seconds)
        version = req.version if req is not None and _VERSION.fullmatch(req.version) else "-"
        key_id = claimed_key_id(req) if req is not None else ""
        principal = key_id if _KEY_ID.fullmatch(key_id) else "-"
        source_ip = (req.source_ip if req is not None else protocol.client_ip(request.scope)) or "-"
        request_id = response.headers.get("x-acs-request-id", "") or "-"
        duration_ms = round(seconds * 1000, 1)
        log.info(
            "%s %d %s %.1f ms key=%s ip=%s request=%s",
            action,
            response.status_code,
            safe_code(result),
            duration_ms,
            principal,
            source_ip,
            request_id,
            extra={
                "request_id": request_id,
                "action": action,
                "version": version,
                "principal": principal,
                "result": safe_code(result),
                "status": response.status_code,
                "duration_ms": duration_ms,
                "source_ip": source_ip,
            },
        )
    except Exception:
        log.exception("cannot log an API request")
    return response
