"""`openims backup PATH` and `openims restore PATH` (docs/backup.md).

A backup is a directory (mode 0700) of 0600 files: the database (a consistent copy taken while the server
runs: `openims.store.backup`), the master key unless it came from OPENIMS_MASTER_KEY, the root credentials
file and the trail-destination settings files when the data dir has them, and `manifest.json`, written last,
which names each file with its SHA-256. A directory rather than an archive: the files can be inspected,
checked with `sha256sum` and copied with any tool, and nothing has to be unpacked before a restore.

The manifest also holds a check value of the master key (SHA-256 of a fixed label and the key, which reveals
nothing of it), so that a restore refuses a wrong OPENIMS_MASTER_KEY before it writes anything.

Both commands are operator actions on every account, recorded like `account set-password`: a backup as a
CreateBackup event in each account of the live deployment once it is written (or, if it failed after it began
to copy, a refused one), a restore as a RestoreBackup event in each account of the restored deployment. The
CreateBackup event of a backup is therefore not in that backup: it was recorded after the snapshot.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from openims import __version__, accounts, clock, ids
from openims.config import ConfigError, Settings
from openims.crypto import MasterKey, load_master_key
from openims.delivery.destinations import OSS_FILE, SLS_FILE
from openims.errors import ApiError
from openims.runtime import Runtime, open_runtime
from openims.store import backup as db_backup
from openims.store.db import Database

FORMAT = "openims-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MASTER_KEY = "master.key"
CREDENTIALS = "root-credentials.json"
# Data-dir files a restored deployment needs, copied as they are when present: the root credentials and the
# trail destinations' settings (which hold the operator's bucket and project credentials).
DATA_FILES = (CREDENTIALS, OSS_FILE, SLS_FILE)
# Settings that, when given in the environment, are not in the backup: the operator must keep them.
ENV_SETTINGS = ("OPENIMS_MASTER_KEY", "OPENIMS_OSS_BUCKETS", "OPENIMS_SLS_PROJECTS")
DATABASE_FILES = {"sqlite": db_backup.SQLITE_FILE, "postgresql": db_backup.POSTGRES_FILE}
BACKUP_EVENT = "CreateBackup"
RESTORE_EVENT = "RestoreBackup"
_KEY_CHECK_LABEL = b"openims-backup-master-key-check\x00"
_CHUNK = 1 << 20
log = logging.getLogger("openims.backup")


def add_commands(sub: Any) -> None:
    """Add `backup` and `restore` to the `openims` subparsers."""
    backup = sub.add_parser(
        "backup",
        help="copy the live deployment (database, master key, root credentials) to a new directory",
        description="Take a consistent copy of the deployment while it serves. PATH must not exist or be an "
        "empty directory. The backup holds the master key: protect it like the key itself.",
    )
    backup.add_argument("path", metavar="PATH", help="the backup directory to create")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore",
        help="restore a backup into an empty data dir (and, on PostgreSQL, an empty database)",
        description="Verify a backup's checksums and restore it into the data dir, which must be missing or "
        "empty; on PostgreSQL into the empty database named by OPENIMS_DATABASE_URL.",
    )
    restore.add_argument("path", metavar="PATH", help="a directory written by `openims backup`")
    restore.set_defaults(func=cmd_restore)


# --- backup -----------------------------------------------------------------------------------------------


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    dest = Path(args.path).expanduser().absolute()
    _refuse_used_destination(dest)
    if not settings.is_sqlite:
        db_backup.require_tool("pg_dump")
    rt = _open_as_is(settings)
    try:
        key, key_from_env = _master_key(settings)
        created_dir = not dest.exists()
        try:
            dest.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(dest, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create the backup directory {dest}: {exc.strerror}") from None
        backup_id = ids.request_id()
        params = {"BackupPath": str(dest), "BackupId": backup_id}
        try:
            manifest = _write_backup(settings, dest, key, key_from_env, backup_id)
        except BaseException as exc:  # an interrupt too: never leave half a backup behind
            _discard(dest, created_dir)
            if isinstance(exc, Exception):
                _record_failure(rt, params, exc)
            raise
        digest = hashlib.sha256((dest / MANIFEST).read_bytes()).hexdigest()
        try:
            _record(rt, BACKUP_EVENT, params, {**params, "ManifestSha256": digest})
        except Exception as exc:
            _discard(dest, created_dir)
            raise ConfigError(
                f"the backup could not be recorded in the audit trail ({exc.__class__.__name__}), so it was "
                "removed: every backup is recorded"
            ) from exc
    finally:
        rt.close()
    _print_backup(settings, dest, manifest)
    return 0


def _open_as_is(settings: Settings) -> Runtime:
    """The deployment's runtime without migrating it, unlike `open_runtime`: a backup changes nothing (one taken
    before an upgrade must hold the schema the server runs), so it needs the schema this OpenIMS writes events to."""
    if not settings.data_dir.is_dir():
        raise ConfigError(f"data dir {settings.data_dir} does not exist or is not a directory: nothing to back up")
    if settings.is_sqlite and not db_backup.sqlite_path(settings.database_url).is_file():
        raise ConfigError(
            f"{settings.data_dir} has no SQLite database; if it belongs to a PostgreSQL deployment, set "
            "OPENIMS_DATABASE_URL"
        )
    current, newest = db_backup.schema_revisions(settings.database_url)
    if current is None:
        raise ConfigError(f"the database for {settings.data_dir} has no OpenIMS schema: nothing to back up")
    if current != newest:
        newer = not db_backup.known_revision(settings.database_url, current)
        raise ConfigError(
            f"the database is at schema revision {current} and this OpenIMS ({__version__}) writes {newest}: "
            + (
                "back it up with the newer OpenIMS that migrated it"
                if newer
                else "a backup never migrates a deployment; back it up with the OpenIMS version the server runs "
                "(before upgrading), or let the server migrate it first"
            )
        )
    return Runtime(
        settings=settings,
        db=Database(settings.database_url),
        master_key=load_master_key(settings.master_key_path, create=False),
    )


def _refuse_used_destination(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ConfigError(f"{dest} already exists and is not a directory: give a new path for the backup")
    if dest.is_dir() and any(dest.iterdir()):
        raise ConfigError(f"{dest} is not empty: a backup never overwrites anything; give a new or empty directory")


def _master_key(settings: Settings) -> tuple[bytes, bool]:
    """The master key the deployment uses (OPENIMS_MASTER_KEY wins, as in `openims.crypto`) and whether it came
    from the environment."""
    env = os.environ.get("OPENIMS_MASTER_KEY")
    if env:
        return _decode_key(env, "OPENIMS_MASTER_KEY"), True
    try:
        text = settings.master_key_path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the master key {settings.master_key_path}: {exc.strerror}") from None
    return _decode_key(text, str(settings.master_key_path)), False


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise ConfigError(f"{where} does not hold a base64 master key") from None
    MasterKey(raw)  # refuses a key of the wrong length
    return raw


def key_check(raw: bytes) -> str:
    """A value that tells whether two master keys are the same without revealing either."""
    return hashlib.sha256(_KEY_CHECK_LABEL + raw).hexdigest()


def _write_backup(settings: Settings, dest: Path, key: bytes, key_from_env: bool, backup_id: str) -> dict[str, Any]:
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    database = DATABASE_FILES[backend]
    created_ms = clock.now_ms()
    try:
        if settings.is_sqlite:
            revision = db_backup.backup_sqlite(settings.database_url, dest / database)
        else:
            revision = db_backup.backup_postgres(settings.database_url, dest / database)
        names = [database]
        if not key_from_env:
            _write_private(dest / MASTER_KEY, settings.master_key_path.read_bytes())
            names.append(MASTER_KEY)
        for name in DATA_FILES:
            source = settings.data_dir / name
            if source.is_file():
                _write_private(dest / name, source.read_bytes())
                names.append(name)
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "openims_version": __version__,
            "backend": backend,
            "alembic_revision": revision,
            "created": clock.iso_ms(created_ms),
            "backup_id": backup_id,
            "data_dir": str(settings.data_dir),
            "master_key": {
                "included": not key_from_env,
                "source": "OPENIMS_MASTER_KEY" if key_from_env else MASTER_KEY,
                "check": key_check(key),
            },
            "not_included": [name for name in ENV_SETTINGS if os.environ.get(name)],
            "files": {name: _describe(dest / name) for name in names},
        }
        _write_private(dest / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        _fsync_dir(dest)
    except OSError as exc:
        raise ConfigError(f"cannot write the backup to {dest}: {exc.strerror or exc}") from None
    return manifest


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(db_backup.private_file(path), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(path: Path) -> dict[str, Any]:
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(dest: Path, created_dir: bool) -> None:
    """Remove a backup that did not complete: the directory if this command made it, else what is in it (it
    was empty before)."""
    if created_dir:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir() if dest.is_dir() else ():
        child.unlink(missing_ok=True)


def _record(
    rt: Runtime,
    name: str,
    params: dict[str, str],
    response: dict[str, str] | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    """The operator's action as an event in each account, as the account's root identity from `localhost`."""
    from openims.audit import outside_api

    err = ApiError(*error) if error is not None else None
    with rt.db.transaction() as conn:
        for account in accounts.list_accounts(rt):
            outside_api.operator_event(rt, conn, account["AccountId"], name, err, params=params, response=response)


def _record_failure(rt: Runtime, params: dict[str, str], exc: Exception) -> None:
    message = str(exc) if isinstance(exc, ConfigError) else exc.__class__.__name__
    try:
        _record(rt, BACKUP_EVENT, params, error=("BackupFailed", message))
    except Exception as record_exc:  # noqa: BLE001 - the failure being reported matters more than its record
        log.warning("the failed backup could not be recorded: %s", record_exc.__class__.__name__)


def _print_backup(settings: Settings, dest: Path, manifest: dict[str, Any]) -> None:
    lines = [
        (
            f"Backed up {settings.data_dir} ({manifest['backend']}, schema revision "
            f"{manifest['alembic_revision']}, taken at {manifest['created']}) to {dest}:"
        )
    ]
    for name, info in manifest["files"].items():
        lines.append(f"  {name:24} {info['bytes']:>12} bytes  sha256 {info['sha256'][:16]}...")
    lines.append(f"  {MANIFEST}")
    for name in manifest["not_included"]:
        lines.append(f"  not included: {name}, set in the environment: keep it for the restore")
    print("\n".join(lines))
    if manifest["master_key"]["included"]:
        warning = (
            "WARNING: this backup holds the master key, which decrypts every secret OpenIMS stores (AccessKey "
            "secrets, MFA seeds, signing keys), and the root AccessKey secret: protect it like the master key "
            "itself (encrypted storage, restricted access) and never store it next to the data dir it came from."
        )
    else:
        warning = (
            "WARNING: this backup holds the root AccessKey secret and every sealed secret; its master key is not in "
            "it (it came from OPENIMS_MASTER_KEY), and a restore needs that key: keep the key, apart from the backup."
        )
    print(warning, file=sys.stderr)


# --- restore ----------------------------------------------------------------------------------------------


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    src = Path(args.path).expanduser().absolute()
    manifest = read_manifest(src)
    _refuse_used_data_dir(settings)
    verify_files(src, manifest)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest["backend"] != backend:
        hint = "unset OPENIMS_DATABASE_URL" if backend == "postgresql" else "set OPENIMS_DATABASE_URL"
        raise ConfigError(
            f"this is a backup of a {manifest['backend']} deployment and the data dir would use {backend}: {hint} "
            "(a restore does not move a deployment between databases)"
        )
    revision = manifest["alembic_revision"]
    if not db_backup.known_revision(settings.database_url, revision):
        raise ConfigError(
            f"the backup's schema revision {revision} is newer than this OpenIMS ({__version__}) knows: "
            f"restore it with OpenIMS {manifest['openims_version']} or newer"
        )
    key_file = _restored_master_key(src, manifest)
    if settings.is_sqlite:
        target = db_backup.sqlite_path(settings.database_url)
        if target.exists():
            raise ConfigError(f"{target} already exists: restore never replaces a database")
    else:
        db_backup.require_tool("pg_restore")
        db_backup.refuse_used_database(settings.database_url)

    created_dir = not settings.data_dir.exists()
    written: list[Path] = []
    database_restored = False
    try:
        try:
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(settings.data_dir, 0o700)  # it is to hold the master key
            if key_file is not None:
                _write_private(settings.master_key_path, key_file)
                written.append(settings.master_key_path)
            for name in DATA_FILES:
                if name in manifest["files"]:
                    _write_private(settings.data_dir / name, (src / name).read_bytes())
                    written.append(settings.data_dir / name)
        except OSError as exc:
            raise ConfigError(f"cannot write to the data dir {settings.data_dir}: {exc.strerror or exc}") from None
        database = src / DATABASE_FILES[backend]
        if settings.is_sqlite:
            written.append(db_backup.restore_sqlite(database, settings.database_url))
        else:
            db_backup.restore_postgres(database, settings.database_url)
        database_restored = True
        rt = open_runtime(settings)  # migrates a backup of an older OpenIMS
    except BaseException as exc:
        if settings.is_sqlite:
            target = db_backup.sqlite_path(settings.database_url)
            written += [Path(f"{target}-wal"), Path(f"{target}-shm")]
        for path in written:
            path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(settings.data_dir, ignore_errors=True)
        if database_restored and not settings.is_sqlite and isinstance(exc, ConfigError):
            raise ConfigError(
                f"{exc} (the database now holds the restored tables: drop and re-create it before trying again)"
            ) from None
        raise
    try:
        current = _current_revision(rt)
        names = [a["AccountId"] for a in accounts.list_accounts(rt)]
        _record(
            rt,
            RESTORE_EVENT,
            {"BackupPath": str(src), "BackupId": str(manifest.get("backup_id", "")), "BackupTime": manifest["created"]},
            {"SchemaRevision": current},
        )
    finally:
        rt.close()
    migrated = f", migrated to {current}" if current != revision else ""
    print(
        f"Restored the backup of {manifest['created']} ({backend}, schema revision {revision}{migrated}) into "
        f"{settings.data_dir}: {len(names)} account(s). Start the server with `openims --data-dir "
        f"{settings.data_dir} serve`."
    )
    return 0


def read_manifest(src: Path) -> dict[str, Any]:
    """The backup's manifest, checked for shape: a restore reads only the files it names."""
    path = src / MANIFEST
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory written by `openims backup`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{src} has no {MANIFEST}: it is not a complete backup") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({exc.__class__.__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{path} is not the manifest of an OpenIMS backup")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(f"{path} has backup format {version!r}; this OpenIMS reads format {FORMAT_VERSION}")
    files = manifest.get("files")
    backend = manifest.get("backend")
    if (
        backend not in DATABASE_FILES
        or not isinstance(files, dict)
        or DATABASE_FILES[backend] not in files
        or not set(files) <= {*DATABASE_FILES.values(), MASTER_KEY, *DATA_FILES}
        or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files.values())
        or not isinstance(manifest.get("alembic_revision"), str)
        or not isinstance(manifest.get("created"), str)
        or not isinstance(manifest.get("master_key"), dict)
    ):
        raise ConfigError(f"{path} is malformed: it does not describe a restorable backup")
    return manifest


def verify_files(src: Path, manifest: dict[str, Any]) -> None:
    """Every file of the manifest is there, a regular file, with its SHA-256."""
    for name, info in manifest["files"].items():
        path = src / name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"the backup is incomplete: {name} is missing; nothing was restored") from None
        if not stat.S_ISREG(mode):
            raise ConfigError(f"the backup's {name} is not a regular file; nothing was restored")
        if _sha256(path) != info["sha256"]:
            raise ConfigError(
                f"checksum mismatch for {name}: the backup is damaged or was altered; nothing was restored"
            )


def _restored_master_key(src: Path, manifest: dict[str, Any]) -> bytes | None:
    """The master.key file to write (None when the key comes from OPENIMS_MASTER_KEY), once it is known to be
    the key of the backup."""
    expected = manifest["master_key"].get("check")
    env = os.environ.get("OPENIMS_MASTER_KEY")
    if MASTER_KEY in manifest["files"]:
        data = (src / MASTER_KEY).read_bytes()
        key = _decode_key(data.decode(errors="replace"), f"the backup's {MASTER_KEY}")
        if expected is not None and key_check(key) != expected:
            raise ConfigError(f"the backup's {MASTER_KEY} does not match its manifest; nothing was restored")
        if env and key_check(_decode_key(env, "OPENIMS_MASTER_KEY")) != key_check(key):
            raise ConfigError(
                "OPENIMS_MASTER_KEY is set to another key than the backup's master key: unset it (the restored "
                "data dir then uses the backup's master.key) or set it to that key"
            )
        return data
    if not env:
        raise ConfigError(
            "this backup does not hold its master key (the deployment used OPENIMS_MASTER_KEY): set "
            "OPENIMS_MASTER_KEY to that key to restore it"
        )
    if expected is not None and key_check(_decode_key(env, "OPENIMS_MASTER_KEY")) != expected:
        raise ConfigError(
            "OPENIMS_MASTER_KEY is not the master key this backup was taken with: its secrets could not be "
            "decrypted; nothing was restored"
        )
    return None


def _refuse_used_data_dir(settings: Settings) -> None:
    data_dir = settings.data_dir
    if not data_dir.exists():
        return
    if not data_dir.is_dir():
        raise ConfigError(f"the data dir {data_dir} exists and is not a directory")
    # A fresh file system's lost+found does not make a volume someone's data dir.
    found = sorted(p.name for p in data_dir.iterdir() if p.name != "lost+found")
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise ConfigError(
            f"the data dir {data_dir} is not empty (it holds {shown}): restore only into a missing or empty data "
            "dir, so that nothing of a deployment is overwritten or mixed with the backup's"
        )


def _current_revision(rt: Runtime) -> str:
    with rt.db.read() as conn:
        return ",".join(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version ORDER BY 1")))
