"""Settings from flags and environment, validated once at start."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "./openims-data"


class ConfigError(Exception):
    """A setting is missing or wrong; the CLI prints it and exits non-zero."""


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    region: str = "cn-hangzhou"
    event_retention_days: int = 90
    # Alibaba's gateway accepts a request whose timestamp is within 15 minutes of its clock.
    signature_window_seconds: int = 900
    delivery_batch_seconds: float = 1.0
    # Where users reach this server (SAML service-provider URLs); `serve` defaults it to its own address.
    public_url: str = ""
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (the caller's IP in events, in acs:SourceIp
    # and in AccessKey network policies; https for acs:SecureTransport). None by default: until an operator
    # names its proxy, any local process could otherwise claim another address.
    trusted_proxies: tuple[str, ...] = ()
    # Networks the server may reach on a caller's behalf (OIDC issuers, trail syslog and webhook destinations)
    # although they are loopback, private, link-local or cloud metadata addresses, refused by default.
    egress_allowed_networks: tuple[str, ...] = ()
    # /metrics: served only with this bearer token (empty: not served on the API port) ...
    metrics_token: str = ""
    # ... or, when set, on this port of its own (on the serve host), without a token.
    metrics_port: int = 0
    # /readyz reports not ready when the data dir's file system has less free space than this.
    ready_min_free_bytes: int = 100 * 1024 * 1024
    # Hostile clients: the whole request head must arrive within header_timeout_s, the body within
    # body_timeout_s; an idle keep-alive connection is closed after keepalive_timeout_s; at most
    # max_connections are open at once (more are refused at once).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 1000
    # "plain" (default) or "json": one JSON object per log line.
    log_format: str = "plain"
    # A signed checkpoint covers each event at most this many seconds after it commits.
    checkpoint_seconds: float = 5.0
    # Processes `serve` answers with (--workers): by default one per core this process may run on.
    workers: int = 1
    # SQL over the trail (openims.query): each query is stopped after this many seconds and returns at most
    # this many rows.
    query_timeout_seconds: float = 10.0
    query_max_rows: int = 10_000

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "root-credentials.json"


def normalize_database_url(url: str) -> str:
    """Accept the plain `postgresql://` form users copy from psql and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load(data_dir: str | os.PathLike[str] | None = None) -> Settings:
    directory = Path(data_dir or os.environ.get("OPENIMS_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
    url = os.environ.get("OPENIMS_DATABASE_URL") or f"sqlite:///{directory / 'openims.db'}"
    url = normalize_database_url(url)
    if not url.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"OPENIMS_DATABASE_URL must be a sqlite:// or postgresql:// URL, got {url.split(':')[0]}://..."
        )
    delivery = os.environ.get("OPENIMS_DELIVERY_BATCH_SECONDS", "1.0")
    try:
        batch = float(delivery)
    except ValueError as exc:
        raise ConfigError(f"OPENIMS_DELIVERY_BATCH_SECONDS must be a number, got {delivery!r}") from exc
    return Settings(
        data_dir=directory,
        database_url=url,
        region=os.environ.get("OPENIMS_REGION", "cn-hangzhou"),
        event_retention_days=_int_env("OPENIMS_EVENT_RETENTION_DAYS", 90),
        signature_window_seconds=_int_env("OPENIMS_SIGNATURE_WINDOW_SECONDS", 900),
        delivery_batch_seconds=batch,
        public_url=os.environ.get("OPENIMS_PUBLIC_URL", ""),
        trusted_proxies=_trusted_proxies(os.environ.get("OPENIMS_TRUSTED_PROXIES", "")),
        egress_allowed_networks=_networks("OPENIMS_EGRESS_ALLOW", os.environ.get("OPENIMS_EGRESS_ALLOW", "")),
        metrics_token=os.environ.get("OPENIMS_METRICS_TOKEN", ""),
        metrics_port=_int_env("OPENIMS_METRICS_PORT", 0, minimum=0),
        ready_min_free_bytes=_int_env("OPENIMS_READY_MIN_FREE_MB", 100, minimum=0) * 1024 * 1024,
        header_timeout_s=_float_env("OPENIMS_HEADER_TIMEOUT_SECONDS", 10.0),
        body_timeout_s=_float_env("OPENIMS_BODY_TIMEOUT_SECONDS", 30.0),
        keepalive_timeout_s=_float_env("OPENIMS_KEEPALIVE_TIMEOUT_SECONDS", 5.0),
        max_connections=_int_env("OPENIMS_MAX_CONNECTIONS", 1000),
        log_format=_choice("OPENIMS_LOG_FORMAT", ("plain", "json")),
        checkpoint_seconds=_float_env("OPENIMS_CHECKPOINT_SECONDS", 5.0),
        workers=_int_env("OPENIMS_WORKERS", len(os.sched_getaffinity(0))),
        query_timeout_seconds=_float_env("OPENIMS_QUERY_TIMEOUT_SECONDS", 10.0),
        query_max_rows=_int_env("OPENIMS_QUERY_MAX_ROWS", 10_000),
    )


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks; empty trusts no proxy."""
    return _networks("OPENIMS_TRUSTED_PROXIES", raw)


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks."""
    out = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in out:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{name} holds {entry!r}, which is not an IP address or CIDR network") from None
    return out


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be more than 0, got {raw!r}")
    return value


def _choice(name: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "") or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw
