"""The engine and the one way to run a transaction."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
# What SQLite says when its file system is full, read-only or failing.
_SQLITE_STORAGE = ("database or disk is full", "disk i/o error", "readonly database", "unable to open database file")
# PostgreSQL SQLSTATEs of the same: class 53 (disk full, out of memory), I/O error, read-only transaction.
_PG_STORAGE = ("53", "58030", "25006")
_LOCK_ACCOUNT = text("SELECT id FROM accounts WHERE id = :id FOR NO KEY UPDATE")


class Database:
    """Wraps the engine. On SQLite, writers queue for a lock instead of failing with 'database is locked'
    (SQLite allows one writer at a time anyway): a thread lock within the process, then an flock beside the
    database file across processes (the workers of `serve`, CLI commands), so a writer sleeps until the lock
    is free instead of in SQLite's busy handler, which polls with growing sleeps."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._checkpoint_in_background = False
        self._writer_fd: int | None = None
        if self.is_sqlite:
            self.engine: Engine = create_engine(url, pool_size=4, max_overflow=4)
            event.listen(self.engine, "connect", self._on_write_connect)
            event.listen(self.engine, "begin", _begin("BEGIN IMMEDIATE"))
            # Readers get their own engine with plain (deferred) BEGIN: in WAL mode they never wait for the writer.
            self.read_engine: Engine = create_engine(url, pool_size=8, max_overflow=8)
            event.listen(self.read_engine, "connect", _sqlite_on_connect)
            event.listen(self.read_engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA query_only=ON"))
            event.listen(self.read_engine, "begin", _begin("BEGIN"))
            database = make_url(url).database
            if database and database != ":memory:":
                self._writer_fd = os.open(f"{database}.writer", os.O_RDWR | os.O_CREAT, 0o600)
        else:
            # Connections are replaced after half an hour rather than pinged before every checkout (a round trip
            # per call); a connection the server cut fails one call, and SQLAlchemy then refreshes the pool.
            self.engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800)
            # Read-only transactions: a read action that tried to write would fail loudly, not commit silently.
            self.read_engine = self.engine.execution_options(postgresql_readonly=True)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # Part of the key of what is cached under an account's authz_version: bumped when a group transaction
        # fails (api/group_commit.py), whose calls may have cached under a version that then never committed,
        # and that a later change would number the same.
        self.epoch = 0

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed if the block returns, rolled back if it raises."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock:
            if self._writer_fd is not None:
                fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
            try:
                with self.engine.begin() as conn:
                    yield conn
            finally:
                if self._writer_fd is not None:
                    fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    def checkpoint_in_background(self) -> None:
        """SQLite: commits no longer copy the WAL into the database when it grows past 1,000 pages (a stall of
        7-60 ms on whichever call crosses it); `store.wal.checkpointer` does it off the request path."""
        if self.is_sqlite and not self._checkpoint_in_background:
            self._checkpoint_in_background = True
            self.engine.dispose()  # pooled connections were opened with automatic checkpoints

    def optimize(self) -> None:
        """Keep SQLite's planner statistics current (two-condition lookups pick the wrong index without them);
        PostgreSQL's autovacuum does this itself."""
        if self.is_sqlite:
            with self.transaction() as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
                conn.exec_driver_sql("PRAGMA optimize=0x10002")

    def _on_write_connect(self, dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        _sqlite_on_connect(dbapi_conn, record)
        if self._checkpoint_in_background:
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    def serialize_account(self, conn: Connection, account_id: str) -> None:
        """Queue this write transaction behind any other one of the same account, in every server process, so
        that read-then-write rules (quotas: count, then insert) hold under concurrency. SQLite already runs one
        writer at a time; on PostgreSQL the account row is locked FOR NO KEY UPDATE, which leaves other
        accounts' writes and foreign-key checks (FOR KEY SHARE) free."""
        if not self.is_sqlite:
            conn.execute(_LOCK_ACCOUNT, {"id": account_id})

    def finds(self, query: Any) -> bool:
        """Whether `query` returns a row, read without the write lock: pollers (the deliverers' claims) ask this
        first, so an idle poll never takes the lock every API write needs."""
        with self.read() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def snapshot(self) -> Snapshot:
        return Snapshot(self)

    @contextmanager
    def read(self, on: Callable[[], Connection] | None = None) -> Iterator[Connection]:
        """A read-only connection: no write lock, never waits for the writer (WAL on SQLite). With `on`, the
        connection it gives instead (a call's own, whose state the reads must see), left open."""
        if on is not None:
            yield on()
            return
        with self.read_engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        logging.getLogger("alembic").setLevel(logging.WARNING)
        engine = self._migration_engine() if self.is_sqlite else self.engine
        try:
            with engine.begin() as conn:
                cfg = alembic_config(self.url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
                if self.is_sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migration left rows that break a foreign key; nothing was changed")
        finally:
            if engine is not self.engine:
                engine.dispose()

    def _migration_engine(self) -> Engine:
        """SQLite migrations run with foreign keys off, as SQLite requires for a table rebuild (Alembic's batch
        mode copies a table, drops it and renames the copy): with them on, dropping `accounts` would cascade
        and delete every row that refers to it. The check above stands in for them."""
        engine = create_engine(self.url, poolclass=NullPool)

        def on_connect(dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
            _sqlite_on_connect(dbapi_conn, record)
            dbapi_conn.execute("PRAGMA foreign_keys=OFF")

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine

    def is_initialized(self) -> bool:
        return inspect(self.engine).has_table("accounts")

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None


class Snapshot:
    """A read connection opened on first use and given back on `close`: the reads of one call (its AccessKey,
    then a read action's handler) share one checkout and see one snapshot, instead of a checkout each."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._held: ExitStack | None = None
        self._conn: Connection | None = None

    def conn(self) -> Connection:
        if self._conn is None:
            self._held = ExitStack()
            self._conn = self._held.enter_context(self._db.read())
        return self._conn

    def close(self) -> None:
        if self._held is not None:
            held, self._held, self._conn = self._held, None, None
            held.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _begin(statement: str) -> Callable[[Connection], None]:
    """SQLite's BEGIN as a "begin" listener, straight on the DB-API connection (every call runs two or three
    transactions: Core's pipeline would cost more than the statement), failing as Core would."""

    def begin(conn: Connection) -> None:
        try:
            conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc

    return begin


def _sqlite_on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" listener emit BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode is durable across application crashes; only an OS crash can lose the last commits.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def is_storage_failure(exc: BaseException) -> bool:
    """Whether a database error means storage cannot take writes now (full, read-only, failing), which passes,
    rather than a fault in the statement."""
    orig = getattr(exc, "orig", exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_PG_STORAGE):
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _SQLITE_STORAGE)
