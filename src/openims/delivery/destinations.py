"""The deployment's OSS/S3 buckets and SLS projects, and the one rule for which account may use which.

One deployment hosts several isolated accounts, and the operator's bucket and project entries carry the
operator's credentials, so an entry may name the accounts allowed to use it: `"accounts": ["<account id>",
...]`. Without it, every account may. An SLS project is also refused when `SlsProjectArn` names another
account than the trail's. Trail actions check this when a trail is created or changed, and the deliverer
again before each delivery, since the settings can change after the trail was created.

Sources (re-read whenever the file or variable changes; no restart):
- buckets: `OPENIMS_OSS_BUCKETS` (inline JSON, or the path of a JSON file), else `<data dir>/oss-buckets.json`;
- projects: `OPENIMS_SLS_PROJECTS`, else `<data dir>/sls-projects.json`.
A `"*"` entry applies to names not listed, under the same rule.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openims.config import Settings

SLS_ARN = re.compile(
    r"acs:log:(?P<region>[a-z0-9-]+):(?P<account>\d+):project/(?P<project>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])"
)
OSS_FILE, SLS_FILE = "oss-buckets.json", "sls-projects.json"
OSS_KEYS = {"endpoint_url", "access_key_id", "secret_access_key", "region"}
SLS_KEYS = {"endpoint", "access_key_id", "access_key_secret"}
ACCOUNTS = "accounts"
ACCOUNT_ID = re.compile(r"\d{16}")


@dataclass(frozen=True)
class Lookup:
    """A bucket's or project's settings as one account sees them. Messages are safe to show to that account:
    they never hold credentials, endpoints or the other accounts an entry allows."""

    entry: dict[str, Any] | None = None  # None: no entry (nor "*") for it
    error: str | None = None  # the settings cannot be read
    denied: str | None = None  # why this account may not use it


class JsonSetting:
    """A JSON object of entries from an environment variable (inline, or a file path) or a data-dir file,
    re-read on change; entries hold string fields from `allowed`, plus the optional `accounts` list."""

    def __init__(self, env: str, default_file: Path, allowed: set[str]) -> None:
        self.env, self.default_file, self.allowed = env, default_file, allowed
        self._stamp: Any = None
        self._value: dict[str, dict[str, Any]] = {}
        self._error: str | None = None
        self._lock = threading.Lock()

    def _source(self) -> tuple[str, Path | None]:
        raw = os.environ.get(self.env, "").strip()
        if raw.startswith("{"):
            return raw, None
        path = Path(raw) if raw else self.default_file
        return "", path

    def get(self) -> tuple[dict[str, dict[str, Any]], str | None, Any]:
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

    def _load(self, inline: str, path: Path | None) -> tuple[dict[str, dict[str, Any]], str | None]:
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
            fields = {k: v for k, v in entry.items() if k != ACCOUNTS}
            if set(fields) - self.allowed or not all(isinstance(v, str) for v in fields.values()):
                return (
                    {},
                    f"{where}: entry {name!r} may hold only string fields {sorted(self.allowed)} and {ACCOUNTS!r}",
                )
            allowed = entry.get(ACCOUNTS, [])
            if not isinstance(allowed, list) or not all(
                isinstance(a, str) and ACCOUNT_ID.fullmatch(a) for a in allowed
            ):
                return {}, f"{where}: entry {name!r}: {ACCOUNTS!r} must be a list of 16-digit account IDs"
        return data, None

    def lookup(self, name: str, account_id: str, what: str) -> Lookup:
        """The entry for `name` (else `"*"`) if `account_id` may use it."""
        entries, error, _ = self.get()
        if error:
            return Lookup(error=error)
        entry = entries.get(name) or entries.get("*")
        if entry is not None and ACCOUNTS in entry and account_id not in entry[ACCOUNTS]:
            return Lookup(
                denied=f"{what} {name!r} is not available to account {account_id} (the deployment's "
                f"settings for it allow other accounts only)"
            )
        return Lookup(entry=entry)


class Destinations:
    """The buckets and projects of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.buckets = JsonSetting("OPENIMS_OSS_BUCKETS", data_dir / OSS_FILE, OSS_KEYS)
        self.projects = JsonSetting("OPENIMS_SLS_PROJECTS", data_dir / SLS_FILE, SLS_KEYS)

    def stamp(self) -> Any:
        """Changes whenever either setting does."""
        return self.buckets.get()[2], self.projects.get()[2]

    def bucket(self, name: str, account_id: str) -> Lookup:
        return self.buckets.lookup(name, account_id, "OSS bucket")

    def project(self, arn: str, account_id: str) -> Lookup:
        """The project named by an `SlsProjectArn`, for a trail of `account_id`."""
        match = SLS_ARN.fullmatch(arn)
        if not match:
            return Lookup(error=f"SlsProjectArn {arn!r} is malformed")
        if match["account"] != account_id:
            # Credentials come from the deployment, not from a role of the named account, so a project of
            # another account is never this trail's to write to.
            return Lookup(
                denied=f"SlsProjectArn {arn!r} names account {match['account']}, not the trail's account {account_id}"
            )
        return self.projects.lookup(match["project"], account_id, "SLS project")


_shared: dict[Path, Destinations] = {}
_shared_lock = threading.Lock()


def destinations(settings: Settings) -> Destinations:
    """The process-wide `Destinations` of a data dir (its settings are cached and re-read on change)."""
    with _shared_lock:
        found = _shared.get(settings.data_dir)
        if found is None:
            found = _shared[settings.data_dir] = Destinations(settings.data_dir)
        return found
