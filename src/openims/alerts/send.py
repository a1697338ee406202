"""An alert rule's destinations, built from its row: the signed webhook and syslog sinks of trail delivery
(openims.delivery.sinks, held to the same egress policy), and email through the operator's SMTP server.

Webhook: `POST` of the alert JSON (`Content-Type: application/json`) with `X-OpenIMS-Alert-Id`,
`X-OpenIMS-Timestamp` and `X-OpenIMS-Signature: sha256=<hex>`, the HMAC-SHA256 with the rule's secret over
`<timestamp>.<alert id>.<body>`, exactly as trail webhooks sign batches. Syslog: one RFC 5424 message, MSGID
`OpenIMSAlert`, severity by the alert's (high: critical, medium: warning, low: notice), the alert as JSON or CEF.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openims.alerts import cef, mail, payload
from openims.config import ConfigError, Settings
from openims.crypto import MasterKey
from openims.delivery.batch import DeliveryError
from openims.delivery.sinks.syslog import SyslogSink, message
from openims.delivery.sinks.webhook import WebhookSink
from openims.delivery.targets import split_host_port
from openims.net import egress

WEBHOOK, SYSLOG, EMAIL = "webhook", "syslog", "email"
KINDS = (WEBHOOK, SYSLOG, EMAIL)
ALERT_MSGID = "OpenIMSAlert"
_SYSLOG_SEVERITY = {"high": 2, "medium": 4, "low": 5}

Send = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Destination:
    """One destination of a rule; `send` delivers an alert there, or `problem` says why it cannot."""

    kind: str
    label: str  # safe to show: never a secret
    send: Send | None = None
    problem: str | None = None

    def deliver(self, alert: Mapping[str, Any]) -> None:
        if self.send is None:
            raise DeliveryError(self.problem or f"{self.label}: not configured")
        self.send(alert)


def kinds_of(row: Any) -> list[str]:
    wanted = {WEBHOOK: bool(row.webhook_url), SYSLOG: bool(row.syslog_address), EMAIL: bool(row.email_to)}
    return [k for k in KINDS if wanted[k]]


class Destinations:
    """Builds (and caches per rule version) the destinations of rule rows."""

    def __init__(self, settings: Settings, master_key: MasterKey) -> None:
        self.settings = settings
        self.master_key = master_key
        self._cache: dict[str, tuple[Any, list[Destination]]] = {}
        self._lock = threading.Lock()

    def of(self, row: Any) -> list[Destination]:
        stamp = (row.updated_ms, os.environ.get("OPENIMS_DELIVERY_CA_FILE"), os.environ.get("OPENIMS_SMTP_URL"))
        with self._lock:
            cached = self._cache.get(row.id)
            if cached and cached[0] == stamp:
                return cached[1]
        built = [self._build(kind, row) for kind in kinds_of(row)]
        with self._lock:
            self._cache[row.id] = (stamp, built)
        return built

    def _build(self, kind: str, row: Any) -> Destination:
        builders = {WEBHOOK: self._webhook, SYSLOG: self._syslog, EMAIL: self._email}
        try:
            return builders[kind](row)
        except (ValueError, ConfigError) as exc:
            return Destination(kind, kind, problem=f"{kind} destination of rule {row.name!r} is misconfigured: {exc}")
        except Exception as exc:  # noqa: BLE001  (e.g. a sealed secret the current master key cannot open)
            return Destination(
                kind, kind, problem=f"{kind} destination of rule {row.name!r} is misconfigured: {type(exc).__name__}"
            )

    def _policy(self) -> egress.Policy:
        return egress.Policy(self.settings.egress_allowed_networks)

    def _webhook(self, row: Any) -> Destination:
        if row.webhook_secret_sealed is None:
            return Destination(WEBHOOK, row.webhook_url, problem="the webhook has no secret")
        sink = WebhookSink(
            row.webhook_url,
            self.master_key.open(row.webhook_secret_sealed, context=row.id),
            ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None,
            policy=self._policy(),
        )

        def send(alert: Mapping[str, Any]) -> None:
            body = payload.dumps(alert).encode("utf-8")
            sink.post(str(alert["alertId"]), body, "application/json", "X-OpenIMS-Alert-Id")

        return Destination(WEBHOOK, row.webhook_url.split("?", 1)[0], send)

    def _syslog(self, row: Any) -> Destination:
        parsed = split_host_port(row.syslog_address)
        if parsed is None:
            return Destination(
                SYSLOG, row.syslog_address, problem=f"syslog address {row.syslog_address!r} is not host:port"
            )
        host, port = parsed
        sink = SyslogSink(
            host,
            port,
            tls=bool(row.syslog_tls),
            ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None,
            policy=self._policy(),
        )
        as_cef = row.syslog_format == "cef"

        def send(alert: Mapping[str, Any]) -> None:
            text = cef.format_alert(alert) if as_cef else payload.dumps(alert)
            severity = _SYSLOG_SEVERITY.get(str(alert.get("severity")), 4)
            sink.send([message(severity, str(alert["alertTime"]), sink.hostname, ALERT_MSGID, text)])

        scheme = "syslog+tls" if row.syslog_tls else "syslog+tcp"
        return Destination(SYSLOG, f"{scheme}://{row.syslog_address}", send)

    def _email(self, row: Any) -> Destination:
        server = mail.configured()
        to = [a for a in row.email_to.split(",") if a]
        if server is None:
            return Destination(EMAIL, ", ".join(to), problem="no SMTP server is configured (OPENIMS_SMTP_URL)")

        def send(alert: Mapping[str, Any]) -> None:
            mail.send(server, to, alert)

        return Destination(EMAIL, f"{', '.join(to)} via {server.label}", send)
