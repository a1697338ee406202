"""Limits on what one client can hold: a deadline for the request head and one for the body, and a cap on open
connections (the idle keep-alive timeout is uvicorn's, set here too so every limit lives in one place).

Without them a client that sends its request head a byte every few seconds (Slowloris), or opens connections and
says nothing, keeps a connection and a file descriptor for as long as it likes, and enough such clients exhaust the
process. The head deadline and the connection cap live in the HTTP protocol (`guarded_protocol`, a subclass of
uvicorn's httptools protocol, passed to uvicorn as `http=`): they act before any request exists. The body deadline
lives in `CompleteBodies`, an ASGI middleware that reads each request's body in full before the application sees
the request, so the application never meets a half-received request (a client that goes away mid-body is one log
line here, not a `ClientDisconnect` traceback there).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from openims import ids
from openims.api import protocol
from openims.errors import ApiError

log = logging.getLogger("openims.api.limits")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A refused connection is not worth a log line each (a flood would write thousands): one line at most this often.
REFUSAL_REPORT_INTERVAL_S = 60.0


def envelope(status: int, code: str, message: str) -> bytes:
    """Alibaba's error envelope, as JSON: no request was read that could have asked for XML."""
    return json.dumps(
        protocol.error_body(ApiError(code, message, status), ids.request_id(), ""), separators=(",", ":")
    ).encode()


def envelope_response(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the envelope, that closes the connection: written straight to the
    socket where no request (or no application) exists to render one."""
    body = envelope(status, code, message)
    reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json;charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Refusals:
    """Counts connections refused at the cap and reports them in one line per REFUSAL_REPORT_INTERVAL_S."""

    def __init__(self) -> None:
        self.count = 0
        self.reported_at = -REFUSAL_REPORT_INTERVAL_S

    def note(self, cap: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.reported_at >= REFUSAL_REPORT_INTERVAL_S:
            log.warning(
                "connection cap reached: %d connection(s) refused since the last report (OPENIMS_MAX_CONNECTIONS=%d)",
                self.count,
                cap,
            )
            self.count = 0
            self.reported_at = now


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head and a cap on open connections.
    `guarded_protocol` makes a subclass with the limits filled in (uvicorn builds protocols from a class)."""

    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 1000
    refusals: _Refusals = _Refusals()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn annotates its keep-alive timeout as whole seconds but only ever hands it to loop.call_later.
        self.timeout_keep_alive = self.keepalive_timeout_s  # type: ignore[assignment]
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Refused at once rather than queued: a client learns now that it should come back later, and a
            # flood of connections costs a file descriptor for a moment each, not for as long as it likes.
            self.connections.discard(self)
            self.refusals.note(self.max_connections)
            transport.write(
                envelope_response(503, "ServiceUnavailable", "The server has too many open connections; try again.")
            )
            transport.close()
            return
        # The first request's head is due within the deadline of the connection opening: a client that connects
        # and says nothing is closed then too.
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Bytes on an idle kept-alive connection stop uvicorn's keep-alive timer; if they do not begin a request
        # (bare CRLFs), nothing else would be due: the next head is, from now.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._head_deadline is None and not self.transport.is_closing():
            self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        if self._head_deadline is None:  # a later request on a kept-alive connection: due from its first byte
            self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        self._head_begun = False
        super().on_headers_complete()

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head is late while an earlier request is still being answered: finish that answer,
            # then close, rather than cutting into it.
            self.cycle.keep_alive = False
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown peer"
        if self._head_begun:
            log.info(
                "closed the connection from %s: its request head was not complete within %g s",
                peer,
                self.header_timeout_s,
                extra={"source_ip": self.client[0] if self.client else ""},
            )
            self.transport.write(
                envelope_response(
                    408, "RequestTimeout", f"The request head did not arrive within {self.header_timeout_s:g} s."
                )
            )
        else:
            log.debug("closed the connection from %s: no request within %g s", peer, self.header_timeout_s)
        self.transport.close()


def guarded_protocol(
    header_timeout_s: float, keepalive_timeout_s: float, max_connections: int
) -> type[GuardedProtocol]:
    """A protocol class for `uvicorn.run(http=...)` with these limits."""

    class Guarded(GuardedProtocol):
        pass

    Guarded.header_timeout_s = header_timeout_s
    Guarded.keepalive_timeout_s = keepalive_timeout_s
    Guarded.max_connections = max_connections
    Guarded.refusals = _Refusals()
    return Guarded


class CompleteBodies:
    """ASGI middleware: the application sees a request only once its whole body has arrived, within
    `body_timeout_s` of the head. A late body gets 408 and the connection closed; a client that goes away
    mid-body gets one log line. A body declared larger than `max_body` is left to the application, which refuses
    it unread; a chunked one is handed on as it comes once past `max_body`."""

    def __init__(self, app: ASGIApp, body_timeout_s: float, max_body: int) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._declared_length(scope) > self.max_body:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        self._went_away(scope, size)
                        return
                    received.append(message)
                    size += len(message.get("body", b""))
                    if not message.get("more_body", False) or size > self.max_body:
                        break
        except TimeoutError:
            log.info(
                "answered %s with 408: its request body was not complete within %g s (%d bytes came)",
                _peer(scope),
                self.body_timeout_s,
                size,
                extra={"source_ip": _source_ip(scope)},
            )
            await _send_timeout(send, self.body_timeout_s)
            return
        await self.app(scope, _replay(received, receive), send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                return int(value) if value.isdigit() else 0
        return 0

    def _went_away(self, scope: Scope, size: int) -> None:
        log.info(
            "the client %s went away after sending %d bytes of its request body, before the request was read",
            _peer(scope),
            size,
            extra={"source_ip": _source_ip(scope)},
        )


def _replay(received: list[Message], receive: Receive) -> Receive:
    """The messages already read, then whatever the connection sends next (a disconnect, or the rest of a long
    chunked body)."""
    pending = list(received)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _send_timeout(send: Send, seconds: float) -> None:
    body = envelope(408, "RequestTimeout", f"The request body did not arrive within {seconds:g} s.")
    headers = [
        (b"content-type", b"application/json;charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown peer"


def _source_ip(scope: Scope) -> str:
    return protocol.client_ip(scope)


# File descriptors the process needs besides its client connections: the database pool, the data dir's files,
# the metrics listener, outgoing calls (OIDC, delivery sinks).
SPARE_FDS = 256


def ensure_fd_limit(max_connections: int) -> None:
    """Raise the soft limit on open files to fit `max_connections` (as far as the hard limit allows), and warn
    when it cannot: past it the server cannot accept anyone, and the cap would never be the one to act."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "the open-file limit (%d) is below OPENIMS_MAX_CONNECTIONS plus %d spare: raise it (ulimit -n, "
            "LimitNOFILE=) or lower OPENIMS_MAX_CONNECTIONS",
            soft,
            SPARE_FDS,
        )
