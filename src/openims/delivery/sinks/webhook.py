"""Delivery as a signed HTTP(S) POST of JSON lines (one event per line).

Each line is the event with one more member, `"openimsLog": {"leafIndex": <n>, "leafHash": "<base64>"}`, its
place in the tamper-evident log (docs/integrity.md); drop it to get the event as LookupEvents serves it.
Headers: `Content-Type: application/x-ndjson`, `X-OpenIMS-Batch-Id`, `X-OpenIMS-Timestamp` (Unix seconds
of this attempt) and `X-OpenIMS-Signature: sha256=<hex>`, where hex is HMAC-SHA256 with the shared secret
over the bytes `<timestamp>.<batch id>.<body>` (ASCII timestamp, a dot, the batch id in UTF-8, a dot,
then the exact body). Receivers should check the signature in constant time, reject stale timestamps,
and deduplicate on the batch id, which is the same on every retry of a batch. Any non-2xx is a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from openims.net import egress

from ..batch import Batch, DeliveryError
from .errors import redact, unreachable
from .tls import client_context

_MAX_ERROR_BODY = 256
LEAF_MEMBER = "openimsLog"
log = logging.getLogger("openims.delivery")


class WebhookSink:
    """POSTs each batch to `url`, signed with `secret`; raises `DeliveryError` unless the answer is 2xx."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        ca_file: str | None = None,
        verify: bool = True,
        timeout: float = 5.0,
        policy: egress.Policy | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook URL must be http:// or https:// with a host")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret.encode("utf-8")
        self._secrets = (secret, parts.password)
        self.timeout = timeout
        self._ssl = client_context(ca_file, verify) if parts.scheme == "https" else None
        # A trail's owner names the URL: it is held to the egress policy, like every fetch on a caller's behalf.
        self._policy = policy or egress.Policy()

    def deliver(self, batch: Batch) -> None:
        """POST the batch; raises `DeliveryError` on a network error or a non-2xx status."""
        if not batch.events:
            return
        body = b"".join(
            json.dumps(_line(batch, e), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            for e in batch.events
        )
        self.post(batch.batch_id, body, "application/x-ndjson", "X-OpenIMS-Batch-Id")

    def post(self, delivery_id: str, body: bytes, content_type: str, id_header: str) -> None:
        """POST `body` signed over `delivery_id` (a batch ID, or an alert ID), which `id_header` carries."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            id_header: delivery_id,
            "X-OpenIMS-Timestamp": timestamp,
            "X-OpenIMS-Signature": "sha256=" + sign(self._secret, timestamp, delivery_id, body),
        }
        where = f"webhook {self._scheme}://{self._host}"
        try:
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                detail = response.read(_MAX_ERROR_BODY)
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, egress.EgressError) as exc:
            raise unreachable(where, exc, self._secrets) from None
        if not 200 <= response.status < 300:
            # The answer's body goes to the operator's log only: the trail's status must not let its owner read
            # what a server answers.
            text = detail.decode("utf-8", "replace").strip()
            log.warning("%s answered HTTP %s: %s", where, response.status, redact(text, self._secrets))
            raise DeliveryError(f"{where} answered HTTP {response.status}")

    def _connection(self) -> http.client.HTTPConnection:
        if self._ssl is not None:
            return _TlsConnection(self._host, self._port, self.timeout, self._ssl, self._policy)
        return _Connection(self._host, self._port, self.timeout, self._policy)


class _Connection(http.client.HTTPConnection):
    """A connection whose socket goes only where the egress policy allows (resolved once, then connected)."""

    def __init__(self, host: str, port: int | None, timeout: float, policy: egress.Policy) -> None:
        super().__init__(host, port, timeout=timeout)
        self._policy = policy

    def connect(self) -> None:
        self.sock = egress.connect(self.host, self.port, self._policy, time.monotonic() + float(self.timeout or 5.0))


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int | None, timeout: float, context: ssl.SSLContext, policy: egress.Policy
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._policy = policy
        self._tls = context

    def connect(self) -> None:
        raw = egress.connect(self.host, self.port, self._policy, time.monotonic() + float(self.timeout or 5.0))
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _line(batch: Batch, event: dict[str, Any]) -> dict[str, Any]:
    """The event, plus its place in the tamper-evident log under `openimsLog` when known: a receiver drops that
    member to get the event exactly as LookupEvents serves it (the leaf covers that)."""
    leaf = batch.leaf(event)
    return {**event, LEAF_MEMBER: {"leafIndex": leaf[0], "leafHash": leaf[1]}} if leaf is not None else event


def sign(secret: bytes, timestamp: str, delivery_id: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<batch or alert id>.<body>`; receivers compute the same to verify."""
    message = timestamp.encode("ascii") + b"." + delivery_id.encode("utf-8") + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
