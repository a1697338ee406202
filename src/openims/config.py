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
    )


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks; empty trusts no proxy."""
    out = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in out:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"OPENIMS_TRUSTED_PROXIES holds {entry!r}, which is not an IP address or CIDR network"
            ) from None
    return out
