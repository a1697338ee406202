"""Delivery as a signed HTTP(S) POST of JSON lines (one event per line).

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
import time
from urllib.parse import urlsplit

from ..batch import Batch, DeliveryError
from .errors import delivery_error, redact
from .tls import client_context

_MAX_ERROR_BODY = 256


class WebhookSink:
    """POSTs each batch to `url`, signed with `secret`; raises `DeliveryError` unless the answer is 2xx."""

    def __init__(
        self, url: str, secret: str, *, ca_file: str | None = None, verify: bool = True, timeout: float = 5.0
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

    def deliver(self, batch: Batch) -> None:
        """POST the batch; raises `DeliveryError` on a network error or a non-2xx status."""
        if not batch.events:
            return
        body = b"".join(
            json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n" for e in batch.events
        )
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-ndjson",
            "X-OpenIMS-Batch-Id": batch.batch_id,
            "X-OpenIMS-Timestamp": timestamp,
            "X-OpenIMS-Signature": "sha256=" + sign(self._secret, timestamp, batch.batch_id, body),
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
        except (OSError, http.client.HTTPException) as exc:
            raise delivery_error(f"{where} failed", exc, self._secrets) from None
        if not 200 <= response.status < 300:
            text = detail.decode("utf-8", "replace").strip()
            message = f"{where} answered HTTP {response.status}" + (f": {text}" if text else "")
            raise DeliveryError(redact(message, self._secrets))

    def _connection(self) -> http.client.HTTPConnection:
        if self._ssl is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)


def sign(secret: bytes, timestamp: str, batch_id: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<batch id>.<body>`; receivers compute the same to verify."""
    message = timestamp.encode("ascii") + b"." + batch_id.encode("utf-8") + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
