"""Alert email through the SMTP server the operator names; an account chooses only the recipients.

`OPENIMS_SMTP_URL`: `smtp://[user:password@]host[:port]` (plain, upgraded with STARTTLS when the URL ends in
`?starttls=true`), or `smtps://...` (TLS from the start; default port 465). `OPENIMS_SMTP_FROM`: the sender
address (default `openims@<host name>`). `OPENIMS_DELIVERY_CA_FILE` is trusted for the server's certificate,
as for webhooks and syslog. The server is the operator's, so it is not held to the egress policy.

Each alert is one message whose Message-ID is derived from the alert ID: a retried delivery is the same
message to mail systems that deduplicate on it.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from openims.config import ConfigError
from openims.delivery.batch import DeliveryError
from openims.delivery.sinks.errors import unreachable
from openims.delivery.sinks.tls import client_context

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool
    starttls: bool
    user: str
    password: str
    sender: str

    @property
    def label(self) -> str:
        return f"{'smtps' if self.tls else 'smtp'}://{self.host}:{self.port}"


def configured() -> SmtpServer | None:
    """The operator's SMTP server, or None when none is set; ConfigError when the setting is malformed."""
    raw = os.environ.get("OPENIMS_SMTP_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("OPENIMS_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://...")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ConfigError("OPENIMS_SMTP_URL has an invalid port") from None
    query = parse_qs(parts.query)
    sender = os.environ.get("OPENIMS_SMTP_FROM", "").strip() or f"openims@{socket.gethostname()}"
    return SmtpServer(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "smtps",
        starttls=query.get("starttls", ["false"])[0].lower() == "true",
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        sender=sender,
    )


def message(server: SmtpServer, to: list[str], alert: Mapping[str, Any]) -> EmailMessage:
    """The email of an alert: a short text, then the alert's JSON (the same object the webhook receives)."""
    msg = EmailMessage()
    msg["From"] = server.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"[OpenIMS {alert.get('severity', '')}] {alert.get('title', '')}: {alert.get('summary', '')}"[:250]
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{alert['alertId']}@openims>"
    msg["X-OpenIMS-Alert-Id"] = str(alert["alertId"])
    lines = [
        str(alert.get("title", "")),
        "",
        str(alert.get("summary", "")),
        f"Rule: {alert.get('ruleName', '')}  Account: {alert.get('accountId', '')}  Time: {alert.get('alertTime', '')}",
        "",
        json.dumps(alert, ensure_ascii=False, indent=2),
    ]
    msg.set_content("\n".join(lines))
    return msg


def send(server: SmtpServer, to: list[str], alert: Mapping[str, Any]) -> None:
    """Send the alert's email; raises `DeliveryError` (the reason goes to the operator's log)."""
    msg = message(server, to, alert)
    context = client_context(os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None)
    secrets = (server.password,)
    try:
        client: smtplib.SMTP
        if server.tls:
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT_S, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_S)
        with client:
            if server.starttls:
                client.starttls(context=context)
            if server.user:
                client.login(server.user, server.password)
            refused = client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise unreachable(f"email through {server.label}", exc, secrets) from None
    if refused:
        raise DeliveryError(f"email through {server.label}: {len(refused)} recipient(s) refused")
