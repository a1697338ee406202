"""The ceiling for an audited write in Python on this machine: a Starlette app that, per request, verifies
one ACS3-HMAC-SHA256 signature and commits one ~1 KB event row to SQLite (WAL, synchronous=NORMAL).

No framework for actions, no ORM, no thread hop: the work is done inline on the event loop, so no real
server doing at least this much per request can be faster under the same uvicorn settings.

    CEILING_DB=/tmp/c.db CEILING_AK=... CEILING_SECRET=... uvicorn bench.ceiling_app:app --port 8999
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import time
import uuid
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AK = os.environ.get("CEILING_AK", "LTAI0000000000000000TEST")
SECRET = os.environ.get("CEILING_SECRET", "s" * 30).encode()

db = sqlite3.connect(os.environ.get("CEILING_DB", "ceiling.db"), isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute(
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE NOT NULL,"
    " event_ms INTEGER NOT NULL, event_name TEXT NOT NULL, body TEXT NOT NULL)"
)


def verify(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> bool:
    """The same canonicalisation as /work/shared/reference/verify_signatures.py:verify_v3."""
    try:
        algo, rest = headers["authorization"].split(" ", 1)
        fields = dict(part.split("=", 1) for part in rest.split(","))
        if fields["Credential"] != AK:
            return False
        signed = fields["SignedHeaders"].split(";")
        canon_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(parse_qsl(query, keep_blank_values=True)))
        canon_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    except (KeyError, ValueError):
        return False
    payload_hash = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256") != payload_hash:
        return False
    canonical = "\n".join([method, path, canon_query, canon_headers, ";".join(signed), payload_hash])
    to_sign = f"{algo}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.compare_digest(hmac.new(SECRET, to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"])


async def handle(request: Request) -> Response:
    body = await request.body()
    headers = dict(request.headers)  # Starlette's header names are already lower-case
    request_id = str(uuid.uuid4()).upper()
    if not verify(request.method, request.url.path, request.url.query, headers, body):
        return JSONResponse({"Code": "SignatureDoesNotMatch", "RequestId": request_id}, status_code=400)
    action = headers.get("x-acs-action", "")
    params = dict(parse_qsl(request.url.query))
    now = int(time.time() * 1000)
    event = {
        "eventId": request_id,
        "eventVersion": 1,
        "eventName": action,
        "eventSource": headers.get("host", ""),
        "eventType": "ApiCall",
        "eventRW": "Write",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "acsRegion": "cn-hangzhou",
        "apiVersion": headers.get("x-acs-version", ""),
        "requestId": request_id,
        "serviceName": "Ims",
        "userAgent": headers.get("user-agent", ""),
        "requestParameters": params,
        "userIdentity": {"type": "root-account", "accessKeyId": AK, "userName": "root"},
    }
    db.execute(
        "INSERT INTO events (event_id, event_ms, event_name, body) VALUES (?, ?, ?, ?)",
        (request_id, now, action, json.dumps(event)),
    )  # autocommit: one commit per request
    return JSONResponse({"RequestId": request_id, "Action": action})


app = Starlette(routes=[Route("/", handle, methods=["POST"])])


async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
    """The floor: a bare ASGI app answering every request at once, for `run.py --only hello`."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"RequestId":"hello"}'})
