"""Everything a running server (or a CLI command) shares: settings, the database and the master key."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

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
        raise ConfigError(f"data dir {settings.data_dir} does not exist; run `openims --data-dir {settings.data_dir} init`")
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
        raise ConfigError(f"cannot open the database ({_safe_url(settings.database_url)}): {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    return Runtime(settings=settings, db=db, master_key=master_key)


def _safe_url(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
