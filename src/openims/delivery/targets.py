"""A trail's delivery targets, built from its row and from the deployment's bucket and log-project settings.

Where endpoints and credentials come from (re-read whenever the file or variable changes; no restart):
- OSS/S3 buckets: `OPENIMS_OSS_BUCKETS` (inline JSON, or the path of a JSON file), else
  `<data dir>/oss-buckets.json`: `{"<bucket>": {"endpoint_url", "access_key_id", "secret_access_key",
  "region"}}`; a `"*"` entry applies to buckets not listed. A bucket with no entry is the directory
  `<data dir>/buckets/<bucket>/`, laid out exactly like the bucket would be.
- SLS projects: `OPENIMS_SLS_PROJECTS`, else `<data dir>/sls-projects.json`: `{"<project>": {"endpoint",
  "access_key_id", "access_key_secret"}}` (with a `"*"` default too). A project with no entry fails
  delivery with a clear error (shown by GetTrailStatus) until one is added; its events wait meanwhile.
- `OPENIMS_DELIVERY_CA_FILE`: a PEM bundle trusted, instead of the system store, by syslog over TLS
  and by webhooks (for private CAs).
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openims.config import Settings
from openims.crypto import MasterKey
from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.sinks import Sink

OSS, SLS, SYSLOG, WEBHOOK = "oss", "sls", "syslog", "webhook"
KINDS = (OSS, SLS, SYSLOG, WEBHOOK)
SLS_ARN = re.compile(r"acs:log:(?P<region>[a-z0-9-]+):(?P<account>\d+):project/(?P<project>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])")
OSS_FILE, SLS_FILE = "oss-buckets.json", "sls-projects.json"
OSS_KEYS = {"endpoint_url", "access_key_id", "secret_access_key", "region"}
SLS_KEYS = {"endpoint", "access_key_id", "access_key_secret"}


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
    wanted = {OSS: bool(row.oss_bucket_name), SLS: bool(row.sls_project_arn), SYSLOG: bool(row.syslog_address),
              WEBHOOK: bool(row.webhook_url)}
    return [kind for kind in KINDS if wanted[kind]]


def split_host_port(address: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port` as (host, port), or None when malformed."""
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d{1,5})|(?P<host>[A-Za-z0-9.-]{1,253}):(?P<port2>\d{1,5})",
                         address)
    if not match:
        return None
    host = match["v6"] or match["host"]
    port = int(match["port"] or match["port2"])
    return (host, port) if 0 < port < 65536 else None


class _JsonSetting:
    """A JSON object from an environment variable (inline, or a file path) or a data-dir file, re-read on change."""

    def __init__(self, env: str, default_file: Path, allowed: set[str]) -> None:
        self.env, self.default_file, self.allowed = env, default_file, allowed
        self._stamp: Any = None
        self._value: dict[str, dict[str, str]] = {}
        self._error: str | None = None
        self._lock = threading.Lock()

    def _source(self) -> tuple[str, Path | None]:
        raw = os.environ.get(self.env, "").strip()
        if raw.startswith("{"):
            return raw, None
        path = Path(raw) if raw else self.default_file
        return "", path

    def get(self) -> tuple[dict[str, dict[str, str]], str | None, Any]:
        """(entries, error, stamp); the stamp changes whenever the source does."""
        inline, path = self._source()
        try:
            stat = path.stat() if path else None
            stamp: Any = (inline, str(path), stat.st_mtime_ns, stat.st_size) if stat else (inline, str(path))
        except OSError:
            stamp = (inline, str(path), None)
        with self._lock:
            if stamp != self._stamp:
                self._value, self._error = self._load(inline, path)
                self._stamp = stamp
            return self._value, self._error, self._stamp

    def _load(self, inline: str, path: Path | None) -> tuple[dict[str, dict[str, str]], str | None]:
        where = self.env if inline else str(path)
        try:
            text = inline or (path.read_text(encoding="utf-8") if path and path.exists() else "{}")
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            # The parser's message can quote the file; keep only its type and position, never contents.
            return {}, f"{where} cannot be read as JSON ({type(exc).__name__})"
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            return {}, f"{where} must be a JSON object of objects"
        for name, entry in data.items():
            unknown = set(entry) - self.allowed
            if unknown or not all(isinstance(v, str) for v in entry.values()):
                return {}, f"{where}: entry {name!r} may hold only string fields {sorted(self.allowed)}"
        return data, None

    def entry(self, name: str) -> tuple[dict[str, str] | None, str | None]:
        entries, error, _ = self.get()
        if error:
            return None, error
        return entries.get(name) or entries.get("*"), None


class TargetFactory:
    """Builds (and caches, since SDK clients are costly to create) the targets of trail rows."""

    def __init__(self, settings: Settings, master_key: MasterKey) -> None:
        self.settings = settings
        self.master_key = master_key
        self.buckets = _JsonSetting("OPENIMS_OSS_BUCKETS", settings.data_dir / OSS_FILE, OSS_KEYS)
        self.projects = _JsonSetting("OPENIMS_SLS_PROJECTS", settings.data_dir / SLS_FILE, SLS_KEYS)
        self._cache: dict[str, tuple[Any, list[Target]]] = {}
        self._lock = threading.Lock()

    def _stamp(self, row: Any) -> Any:
        return (row.updated_ms, self.buckets.get()[2], self.projects.get()[2], os.environ.get("OPENIMS_DELIVERY_CA_FILE"))

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
        builders: dict[str, Callable[[Any], Target]] = {OSS: self._oss, SLS: self._sls, SYSLOG: self._syslog,
                                                         WEBHOOK: self._webhook}
        try:
            return builders[kind](row)
        except Exception as exc:  # noqa: BLE001  (e.g. a sealed secret the current master key cannot open)
            why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            return Target(kind, kind, problem=f"{kind} target of trail {row.name!r} is misconfigured: {why}")

    def _oss(self, row: Any) -> Target:
        bucket = row.oss_bucket_name
        entry, error = self.buckets.entry(bucket)
        if error:
            return Target(OSS, f"oss://{bucket}", problem=error)
        if entry is None or not entry.get("endpoint_url"):
            from openims.delivery.sinks.directory import DirectorySink

            root = self.settings.data_dir / "buckets"
            return Target(OSS, f"directory {root / bucket}", DirectorySink(root, bucket, row.oss_key_prefix))
        from openims.delivery.sinks.oss import S3Sink

        sink = S3Sink(bucket, row.oss_key_prefix, endpoint_url=entry["endpoint_url"],
                      access_key_id=entry.get("access_key_id"), secret_access_key=entry.get("secret_access_key"),
                      region=entry.get("region"))
        return Target(OSS, f"oss://{bucket} at {entry['endpoint_url']}", sink)

    def _sls(self, row: Any) -> Target:
        match = SLS_ARN.fullmatch(row.sls_project_arn)
        if not match:
            return Target(SLS, row.sls_project_arn, problem=f"SlsProjectArn {row.sls_project_arn!r} is malformed")
        project = match["project"]
        label = f"SLS project {project}, logstore actiontrail_{row.name}"
        entry, error = self.projects.entry(project)
        if error:
            return Target(SLS, label, problem=error)
        if entry is None or not entry.get("endpoint"):
            return Target(SLS, label, problem=f"no endpoint is configured for SLS project {project!r}: add it to "
                                              f"{SLS_FILE} in the data dir or to OPENIMS_SLS_PROJECTS")
        from openims.delivery.sinks.sls import SlsSink

        sink = SlsSink(entry["endpoint"], project, None, entry.get("access_key_id", ""),
                       entry.get("access_key_secret", ""))
        return Target(SLS, label, sink)

    def _syslog(self, row: Any) -> Target:
        from openims.delivery.sinks.syslog import SyslogSink

        parsed = split_host_port(row.syslog_address)
        if parsed is None:
            return Target(SYSLOG, row.syslog_address, problem=f"syslog address {row.syslog_address!r} is not host:port")
        host, port = parsed
        scheme = "syslog+tls" if row.syslog_tls else "syslog+tcp"
        sink = SyslogSink(host, port, tls=bool(row.syslog_tls), ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None)
        return Target(SYSLOG, f"{scheme}://{row.syslog_address}", sink)

    def _webhook(self, row: Any) -> Target:
        from openims.delivery.sinks.webhook import WebhookSink

        if row.webhook_secret_sealed is None:
            return Target(WEBHOOK, row.webhook_url, problem="the webhook has no secret")
        secret = self.master_key.open(row.webhook_secret_sealed, context=row.id)
        sink = WebhookSink(row.webhook_url, secret, ca_file=os.environ.get("OPENIMS_DELIVERY_CA_FILE") or None)
        return Target(WEBHOOK, row.webhook_url.split("?", 1)[0], sink)

    def forget(self, trail_id: str) -> None:
        with self._lock:
            self._cache.pop(trail_id, None)
