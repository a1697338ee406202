"""A trail's delivery targets, built from its row and from the deployment's bucket and log-project settings.

Where endpoints and credentials come from, and which account may use which, is `destinations` (one rule, also
used by the trail actions; re-checked here before every delivery, since the settings can change):
- OSS/S3 buckets: `OPENIMS_OSS_BUCKETS` or `<data dir>/oss-buckets.json`: `{"<bucket>": {"endpoint_url",
  "access_key_id", "secret_access_key", "region", "accounts"}}`. A bucket with no endpoint is the directory
  `<data dir>/buckets/<account id>/<bucket>/`, laid out exactly like the bucket would be: per account, so two
  accounts naming the same bucket never mix their events.
- SLS projects: `OPENIMS_SLS_PROJECTS` or `<data dir>/sls-projects.json`: `{"<project>": {"endpoint",
  "access_key_id", "access_key_secret", "accounts"}}`. A project with no entry fails delivery with a clear
  error (shown by GetTrailStatus) until one is added; its events wait meanwhile.
- `OPENIMS_DELIVERY_CA_FILE`: a PEM bundle trusted, instead of the system store, by syslog over TLS
  and by webhooks (for private CAs).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openims.config import Settings
from openims.crypto import MasterKey
from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.destinations import SLS_ARN, SLS_FILE, destinations
from openims.delivery.sinks import Sink
from openims.net import egress

OSS, SLS, SYSLOG, WEBHOOK = "oss", "sls", "syslog", "webhook"
KINDS = (OSS, SLS, SYSLOG, WEBHOOK)


@dataclass(frozen=True)
class Target:
    """One destination of a trail; `sink` delivers to it, or `problem` says why it cannot be built."""

    kind: str
    label: str  # where it goes, safe to show (never credentials)
    sink: Sink | None = None
    problem: str | None = None

    def deliver(self, batch: Batch) -> None:
        """Deliver `batch`; raises `DeliveryError`."""
        if self.sink is None:
            raise DeliveryError(self.problem or f"{self.label}: not configured")
        self.sink.deliver(batch)


def kinds_of(row: Any) -> list[str]:
    """The target kinds a trail row configures, in delivery order."""
    wanted = {
        OSS: bool(row.oss_bucket_name),
        SLS: bool(row.sls_project_arn),
        SYSLOG: bool(row.syslog_address),
        WEBHOOK: bool(row.webhook_url),
    }
    return [kind for kind in KINDS if wanted[kind]]


def split_host_port(address: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port` as (host, port), or None when malformed."""
    match = re.fullmatch(
        r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d{1,5})|(?P<host>[A-Za-z0-9.-]{1,253}):(?P<port2>\d{1,5})", address
    )
    if not match:
        return None
    host = match["v6"] or match["host"]
    port = int(match["port"] or match["port2"])
    return (host, port) if 0 < port < 65536 else None


class TargetFactory:
    """Builds (and caches, since SDK clients are costly to create) the targets of trail rows."""

    def __init__(self, settings: Settings, master_key: MasterKey) -> None:
        self.settings = settings
        self.master_key = master_key
        self.destinations = destinations(settings)
        self._cache: dict[str, tuple[Any, list[Target]]] = {}
        self._lock = threading.Lock()

    def _stamp(self, row: Any) -> Any:
        return row.updated_ms, self.destinations.stamp(), os.environ.get("OPENIMS_DELIVERY_CA_FILE")

    def targets(self, row: Any) -> list[Target]:
        """The targets of a trail row (a Row of `trails`)."""
        stamp = self._stamp(row)
        with self._lock:
            cached = self._cache.get(row.id)
            if cached and cached[0] == stamp:
                return cached[1]
        built = [self._build(kind, row) for kind in kinds_of(row)]
        with self._lock:
            self._cache[row.id] = (stamp, built)
        return built

    def _build(self, kind: str, row: Any) -> Target:
        builders: dict[str, Callable[[Any], Target]] = {
            OSS: self._oss,
            SLS: self._sls,
            SYSLOG: self._syslog,
            WEBHOOK: self._webhook,
        }
        try:
            return builders[kind](row)
        except Exception as exc:  # noqa: BLE001  (e.g. a sealed secret the current master key cannot open)
            why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            return Target(kind, kind, problem=f"{kind} target of trail {row.name!r} is misconfigured: {why}")

    def _oss(self, row: Any) -> Target:
        bucket = row.oss_bucket_name
        found = self.destinations.bucket(bucket, row.account_id)
        entry = found.entry
        if found.error or found.denied:
            return Target(OSS, f"oss://{bucket}", problem=found.error or found.denied)
        if entry is None or not entry.get("endpoint_url"):
            from openims.delivery.sinks.directory import DirectorySink

            root = self.settings.data_dir / "buckets" / row.account_id
            return Target(OSS, f"directory {root / bucket}", DirectorySink(root, bucket, row.oss_key_prefix))
        from openims.delivery.sinks.s3 import S3Sink

        sink = S3Sink(
            bucket,
            row.oss_key_prefix,
            endpoint_url=entry["endpoint_url"],
            access_key_id=entry.get("access_key_id"),
            secret_access_key=entry.get("secret_access_key"),
            region=entry.get("region"),
        )
        return Target(OSS, f"oss://{bucket} at {entry['endpoint_url']}", sink)

    def _sls(self, row: Any) -> Target:
        match = SLS_ARN.fullmatch(row.sls_project_arn)
        project = match["project"] if match else row.sls_project_arn
        label = f"SLS project {project}, logstore actiontrail_{row.name}"
        found = self.destinations.project(row.sls_project_arn, row.account_id)
        entry = found.entry
        if found.error or found.denied:
            return Target(SLS, label, problem=found.error or found.denied)
        if entry is None or not entry.get("endpoint"):
            return Target(
                SLS,
                label,
                problem=f"no endpoint is configured for SLS project {project!r}: add it to "
                f"{SLS_FILE} in the data dir or to OPENIMS_SLS_PROJECTS",
            )
        from openims.delivery.sinks.sls import SlsSink

        sink = SlsSink(
            entry["endpoint"], project, None, entry.get("access_key_id", ""), entry.get("access_key_secret", "")
        )
        return Target(SLS, label, sink)

    def _syslog(self, row: Any) -> Target:
        from openims.delivery.sinks.syslog import SyslogSink

        parsed = split_host_port(row.syslog_address)
        if parsed is None:
            return Target(SYSLOG, row.syslog_address, problem=f"syslog address {row.syslog_address!r} is not host:port")
        host, port = parsed
        scheme = "syslog+tls" if row.syslog_tls else "syslog+tcp"
        sink = SyslogSink(
            host,
            port,
            tls=bool(row.syslog_tls),
            ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None,
            policy=egress.Policy(self.settings.egress_allowed_networks),
        )
        return Target(SYSLOG, f"{scheme}://{row.syslog_address}", sink)

    def _webhook(self, row: Any) -> Target:
        from openims.delivery.sinks.webhook import WebhookSink

        if row.webhook_secret_sealed is None:
            return Target(WEBHOOK, row.webhook_url, problem="the webhook has no secret")
        secret = self.master_key.open(row.webhook_secret_sealed, context=row.id)
        sink = WebhookSink(
            row.webhook_url,
            secret,
            ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None,
            policy=egress.Policy(self.settings.egress_allowed_networks),
        )
        return Target(WEBHOOK, row.webhook_url.split("?", 1)[0], sink)

    def forget(self, trail_id: str) -> None:
        with self._lock:
            self._cache.pop(trail_id, None)
