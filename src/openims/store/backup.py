"""The database half of `openims backup` and `openims restore`: a consistent copy of a live database, and
its restore into an empty one.

SQLite is copied with SQLite's online backup API in one step, which reads one snapshot while the server
keeps writing (in WAL mode a reader never blocks the writer); the copy is switched out of WAL mode so that
it is one self-contained file. PostgreSQL is dumped with `pg_dump` in its custom format, inside a snapshot
this module exports (`pg_export_snapshot`), so the Alembic revision written in the manifest is read from the
very state the dump holds; `pg_restore --single-transaction` restores it all or nothing. The custom format
rather than plain SQL: it is compressed, and pg_restore can restore it in one transaction and stop at the
first error, so a failed restore leaves the database empty.

A password in the PostgreSQL URL reaches the tools through PGPASSWORD, never their command line (which any
local user can read in the process list).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from openims.config import ConfigError
from openims.store.db import alembic_config
from openims.store.schema import load_all

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
# How long a step may wait for SQLite's locks (a WAL checkpoint, the server's recovery) before giving up.
_SQLITE_TIMEOUT_S = 30.0


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


def private_file(path: Path) -> int:
    """A new file only its owner can read (never an existing file, never through a symlink); its descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)


def backup_sqlite(url: str, dest: Path) -> str:
    """Copy the live SQLite database of `url` to the new file `dest`; returns the copy's Alembic revision."""
    source = sqlite_path(url)
    if not source.is_file():
        raise ConfigError(f"the SQLite database {source} does not exist")
    os.close(private_file(dest))  # an empty file is an empty database: the copy then keeps its 0600 mode
    try:
        with closing(sqlite3.connect(source, timeout=_SQLITE_TIMEOUT_S)) as src:
            src.execute("PRAGMA query_only=ON")
            with closing(sqlite3.connect(dest)) as dst:
                src.backup(dst)  # every page in one step: one consistent snapshot
                dst.execute("PRAGMA journal_mode=DELETE")
                if (check := dst.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
                    raise ConfigError(f"the copy of {source} failed SQLite's check: {check}")
                return _revision_sqlite(dst)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot copy the SQLite database {source}: {exc}") from None


def _revision_sqlite(conn: sqlite3.Connection) -> str:
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version ORDER BY version_num").fetchall()
    except sqlite3.Error:
        rows = []
    if not rows:
        raise ConfigError("the database has no OpenIMS schema revision (alembic_version)")
    return ",".join(r[0] for r in rows)


def sqlite_revision(path: Path) -> str:
    """The Alembic revision of a SQLite file, opened read-only."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return _revision_sqlite(conn)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read {path} as a SQLite database: {exc}") from None


def restore_sqlite(src: Path, url: str) -> Path:
    """Copy a backup's SQLite file to where `url` points (which must not exist yet); returns that path."""
    target = sqlite_path(url)
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        if leftover.exists():
            raise ConfigError(f"{leftover} already exists: restore never replaces a database")
    partial = target.with_name(f".{target.name}.restoring-{os.getpid()}")
    os.close(private_file(partial))
    try:
        with (
            closing(sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)) as source,
            closing(sqlite3.connect(partial)) as dst,
        ):
            source.backup(dst)
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot restore the SQLite database from {src}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def schema_revisions(url: str) -> tuple[str | None, str]:
    """The database's Alembic revision (None: no OpenIMS schema) and the newest one this OpenIMS knows."""
    heads = ",".join(sorted(ScriptDirectory.from_config(alembic_config(url)).get_heads()))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with _reaching(url), engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None, heads
            rows = conn.execute(text("SELECT version_num FROM alembic_version ORDER BY version_num")).all()
            return ",".join(r[0] for r in rows) or None, heads
    finally:
        engine.dispose()


def known_revision(url: str, revision: str) -> bool:
    """Whether this OpenIMS knows every Alembic revision in `revision` (so it can migrate from there)."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    try:
        return all(scripts.get_revision(rev) is not None for rev in revision.split(","))
    except (CommandError, RevisionError):
        return False


def require_tool(name: str) -> str:
    """The full path of a PostgreSQL client tool, or a one-line error saying what to install."""
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not on PATH: it is needed to back up and restore a PostgreSQL deployment (install the "
            "PostgreSQL client tools of the server's major version or newer, e.g. Debian's postgresql-client)"
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the tools, without the password, and the environment that carries it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _tool_error(tool: str, result: subprocess.CompletedProcess[bytes], url: str) -> ConfigError:
    lines = result.stderr.decode(errors="replace").splitlines()
    first = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
    password = make_url(url).password
    if password:
        first = first.replace(str(password), "***")
    return ConfigError(f"{tool} failed (exit status {result.returncode}): {first.strip() or 'no message'}")


@contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Turns a failure to reach the database into one line; `url` is shown without its password."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        where = make_url(url).render_as_string(hide_password=True)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"cannot use the database {where}: {exc.__class__.__name__}: {first}") from exc


def backup_postgres(url: str, dest: Path) -> str:
    """Dump the live PostgreSQL database of `url` to the new file `dest`; returns the dump's Alembic revision."""
    pg_dump = require_tool("pg_dump")
    conninfo, env = _libpq(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with _reaching(url), engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                rows = conn.execute(text("SELECT version_num FROM alembic_version ORDER BY version_num")).all()
                if not rows:
                    raise ConfigError("the database has no OpenIMS schema revision (alembic_version)")
                fd = private_file(dest)
                with os.fdopen(fd, "wb") as out:
                    result = subprocess.run(
                        [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}"]
                        + [f"--dbname={conninfo}"],
                        stdout=out,
                        stderr=subprocess.PIPE,
                        env=env,
                        check=False,
                    )
                    out.flush()
                    os.fsync(out.fileno())
                if result.returncode != 0:
                    raise _tool_error("pg_dump", result, url)
                return ",".join(r[0] for r in rows)
    finally:
        engine.dispose()


def openims_tables(url: str) -> list[str]:
    """The OpenIMS tables (and Alembic's) the database of `url` already has."""
    ours = set(load_all().tables) | {"alembic_version"}
    engine = create_engine(url, poolclass=NullPool)
    try:
        with _reaching(url):
            return sorted(ours & set(inspect(engine).get_table_names()))
    finally:
        engine.dispose()


def refuse_used_database(url: str) -> None:
    """A one-line refusal when the database of `url` already has OpenIMS tables."""
    if found := openims_tables(url):
        raise ConfigError(
            f"the database {make_url(url).database} already has OpenIMS tables ({', '.join(found[:3])}, ...): "
            "restore only into an empty database (for example one made with `createdb`)"
        )


def restore_postgres(src: Path, url: str) -> None:
    """Restore a backup's dump into the database of `url`, which must hold no OpenIMS table."""
    pg_restore = require_tool("pg_restore")
    refuse_used_database(url)
    conninfo, env = _libpq(url)
    result = subprocess.run(
        [pg_restore, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
        + [f"--dbname={conninfo}", str(src)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise _tool_error("pg_restore", result, url)
    # --no-privileges leaves out the grant that lets trail queries read their view (openims.query.postgres).
    from openims.query.postgres import grant_access

    grant_access(url)
