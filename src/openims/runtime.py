"""Everything a running server (or a CLI command) shares: settings, the database and the master key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from sqlalchemy.engine import make_url

from openims.config import ConfigError, Settings
from openims.crypto import MasterKey, load_master_key
from openims.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    master_key: MasterKey
    # Decrypted AccessKey secrets by key ID: a key's secret never changes, so only status is re-read per call.
    secret_cache: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.db.dispose()


T = TypeVar("T")


class PerDatabase(Generic[T]):
    """One `factory()` instance per database URL in this process, shared by every Runtime on that database
    (in-memory state such as caches must not split when tests or tools open a second Runtime)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._by_url: dict[str, T] = {}
        self._lock = threading.Lock()

    def __call__(self, rt: Runtime) -> T:
        found = self._by_url.get(rt.db.url)
        if found is None:
            with self._lock:
                found = self._by_url.setdefault(rt.db.url, self._factory())
        return found


def open_runtime(settings: Settings, create: bool = False) -> Runtime:
    """Open the data dir (creating it and migrating the schema when `create`)."""
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    elif not settings.data_dir.is_dir():
        what = "is not a directory" if settings.data_dir.exists() else "does not exist"
        raise ConfigError(f"data dir {settings.data_dir} {what}; run `openims --data-dir {settings.data_dir} init`")
    elif settings.is_sqlite and not _sqlite_file(settings).exists():
        # Opening it would create an empty database file next to, say, a PostgreSQL deployment's credentials.
        raise ConfigError(
            f"{settings.data_dir} has no SQLite database ({_sqlite_file(settings).name}); if it belongs to a "
            "PostgreSQL deployment, set OPENIMS_DATABASE_URL, otherwise run `openims init`"
        )
    master_key = load_master_key(settings.master_key_path, create=create)
    db = Database(settings.database_url)
    try:
        if create:
            db.migrate()
        elif not db.is_initialized():
            raise ConfigError(f"the database for {settings.data_dir} has no OpenIMS schema; run `openims init`")
        else:
            db.migrate()
    except ConfigError:
        db.dispose()
        raise
    except Exception as exc:  # a corrupt file or an unreachable server: say which, not a traceback
        db.dispose()
        raise _cannot_open(settings, exc) from exc
    return Runtime(settings=settings, db=db, master_key=master_key)


def has_schema(settings: Settings) -> bool:
    """Whether the configured database already holds OpenIMS's schema (ConfigError if it cannot be reached)."""
    db = Database(settings.database_url)
    try:
        return db.is_initialized()
    except Exception as exc:
        raise _cannot_open(settings, exc) from exc
    finally:
        db.dispose()


def _cannot_open(settings: Settings, exc: Exception) -> ConfigError:
    return ConfigError(
        f"cannot open the database ({_safe_url(settings.database_url)}): {exc.__class__.__name__}: "
        f"{str(exc).splitlines()[0]}"
    )


def _sqlite_file(settings: Settings) -> Path:
    return Path(make_url(settings.database_url).database or "")


def _safe_url(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
