"""Delivery as RFC 5424 syslog messages over TCP (optionally TLS, RFC 5425) with octet-counting framing (RFC 6587).

One message per event: PRI is facility authpriv (10) with severity notice for `Write` events and info
otherwise; TIMESTAMP is the event's eventTime; APP-NAME `openims`; MSGID the eventName; structured
data `[log@32473 leafIndex="<n>" leafHash="<base64>"]`, the event's place in the tamper-evident log
(docs/integrity.md; 32473 is RFC 5612's documentation enterprise number, OpenIMS has none of its own), or
`-` for an event not in the log; MSG the event JSON (UTF-8, no BOM). TCP syslog has no acknowledgement, so delivery is
at-least-once: a retried batch may repeat messages, and receivers deduplicate on the event's eventId.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from openims.net import egress

from ..batch import Batch
from .errors import unreachable
from .tls import client_context

_FACILITY_AUTHPRIV = 10
_SEVERITY_NOTICE = 5
_SEVERITY_INFO = 6
_APP_NAME = "openims"
_NIL = "-"
_SD_ID = "log@32473"


class SyslogSink:
    """Sends each event of a batch as one framed RFC 5424 message on a fresh TCP/TLS connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        ca_file: str | None = None,
        verify: bool = True,
        hostname: str | None = None,
        timeout: float = 5.0,
        policy: egress.Policy | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        # A trail's owner names the address: it is held to the egress policy, like every fetch on a caller's behalf.
        self.policy = policy or egress.Policy()
        self.hostname = _header_field(hostname or socket.gethostname(), 255)
        self._ssl = client_context(ca_file, verify) if tls else None

    def deliver(self, batch: Batch) -> None:
        """Send every event of the batch; raises `DeliveryError` if the connection or a write fails."""
        if not batch.events:
            return
        self.send([format_message(event, self.hostname, batch.leaf(event)) for event in batch.events])

    def send(self, messages: list[bytes]) -> None:
        """Send framed messages on one connection; raises `DeliveryError` if the connection or a write fails."""
        data = b"".join(frame(message) for message in messages)
        try:
            with egress.connect(self.host, self.port, self.policy, time.monotonic() + self.timeout) as raw:
                if self._ssl is None:
                    raw.sendall(data)
                    return
                with self._ssl.wrap_socket(raw, server_hostname=self.host) as conn:
                    conn.sendall(data)
        except (OSError, egress.EgressError) as exc:  # ssl.SSLError and socket.timeout are OSErrors
            raise unreachable(f"syslog delivery to {egress.hostport(self.host, self.port)}", exc) from None


def format_message(event: dict[str, Any], hostname: str, leaf: tuple[int, str] | None = None) -> bytes:
    """The RFC 5424 message for one event, with its leaf index and base64 leaf hash when known."""
    severity = _SEVERITY_NOTICE if event.get("eventRW") == "Write" else _SEVERITY_INFO
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    # Base64 holds none of the characters SD-PARAM values must escape (", \ and ]).
    data = f'[{_SD_ID} leafIndex="{leaf[0]}" leafHash="{leaf[1]}"]' if leaf is not None else _NIL
    timestamp, msgid = str(event.get("eventTime") or ""), str(event.get("eventName") or "")
    return message(severity, timestamp, hostname, msgid, body, data)


def message(severity: int, timestamp: str, hostname: str, msgid: str, body: str, data: str = _NIL) -> bytes:
    """An RFC 5424 message of facility authpriv: the header fields made valid, the structured `data`, then
    `body` in UTF-8."""
    pri = _FACILITY_AUTHPRIV * 8 + severity
    header = f"<{pri}>1 {_header_field(timestamp, 64)} {hostname} {_APP_NAME} {_NIL} {_header_field(msgid, 32)} {data} "
    return header.encode("ascii") + body.encode("utf-8")


def frame(message: bytes) -> bytes:
    """Octet-counting frame: the message length in bytes, a space, the message."""
    return b"%d %s" % (len(message), message)


def _header_field(value: str, max_len: int) -> str:
    """A header field limited to printable US-ASCII without spaces, as RFC 5424 requires; `-` when empty."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:max_len]
    return cleaned or _NIL
