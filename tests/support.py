"""Test support: a real `openims serve` process per database backend, SDK clients pointed at it, and a
fresh isolated account per test (so tests never see each other's users or events)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alibabacloud_actiontrail20200706 import models as at_models
from alibabacloud_actiontrail20200706.client import Client as TrailClient
from alibabacloud_ims20190815.client import Client as ImsClient
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi import utils_models as open_api
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from darabonba.runtime import RuntimeOptions

from openims import accounts, config
from openims.runtime import Runtime, open_runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sdk_config(endpoint: str, key_id: str, secret: str, v2: bool = False) -> open_api.Config:
    cfg = open_api.Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol="http",
        read_timeout=30000,
        connect_timeout=5000,
    )
    if v2:
        cfg.signature_algorithm = "v2"
    return cfg


@dataclass
class Account:
    """One isolated account on the server, with SDK clients signed by its root key."""

    server: Server
    account_id: str
    alias: str
    key_id: str
    secret: str

    @property
    def domain(self) -> str:
        return accounts.default_domain(self.alias)

    def upn(self, name: str | None = None) -> str:
        return f"{name or 'u' + uuid.uuid4().hex[:10]}@{self.domain}"

    def ims(self, key_id: str | None = None, secret: str | None = None, v2: bool = False) -> ImsClient:
        return ImsClient(sdk_config(self.server.endpoint, key_id or self.key_id, secret or self.secret, v2))

    def trail(self, key_id: str | None = None, secret: str | None = None, v2: bool = False) -> TrailClient:
        return TrailClient(sdk_config(self.server.endpoint, key_id or self.key_id, secret or self.secret, v2))

    def ram(self, key_id: str | None = None, secret: str | None = None, v2: bool = False) -> RamClient:
        return RamClient(sdk_config(self.server.endpoint, key_id or self.key_id, secret or self.secret, v2))

    def call(
        self,
        action: str,
        params: dict[str, Any] | None = None,
        version: str = "2019-08-15",
        key_id: str | None = None,
        secret: str | None = None,
        v2: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A signed RPC call through the official SDK runtime's generic caller (for actions the SDK lacks)."""
        client = OpenApiClient(sdk_config(self.server.endpoint, key_id or self.key_id, secret or self.secret, v2))
        spec = open_api.Params(
            action=action,
            version=version,
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return client.call_api(spec, open_api.OpenApiRequest(query=query, headers=headers or {}), RuntimeOptions())[
            "body"
        ]

    def events(self, **attributes: str) -> list[dict[str, Any]]:
        """Every event (newest first) of this account matching LookupAttribute key=value pairs, all pages."""
        attrs = [at_models.LookupEventsRequestLookupAttribute(key=k, value=v) for k, v in attributes.items()]
        found: list[dict[str, Any]] = []
        token = None
        client = self.trail()
        while True:
            body = client.lookup_events(
                at_models.LookupEventsRequest(lookup_attribute=attrs, max_results="50", next_token=token)
            ).body
            found += body.events or []
            token = body.next_token
            if not token:
                return found

    def event_for(self, request_id: str) -> dict[str, Any]:
        """The event recorded for a request, found by the RequestId the caller got."""
        for event in self.events():
            if event["requestId"] == request_id:
                return event
        raise AssertionError(f"no event for request {request_id}")


@dataclass
class Server:
    backend: str
    data_dir: Path
    database_url: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    _runtime: Runtime | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def settings(self) -> config.Settings:
        return config.Settings(data_dir=self.data_dir, database_url=config.normalize_database_url(self.database_url))

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = open_runtime(self.settings())
        return self._runtime

    def start(self) -> None:
        with open(self.data_dir.parent / f"server-{self.port}.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "openims", "--data-dir", str(self.data_dir), "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"openims serve exited with {self.proc.returncode}; see {log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        # Not left running behind a failed fixture (on a loaded machine, each would take its share of the CPU).
        self.proc.kill()
        self.proc.wait(timeout=15)
        raise RuntimeError("openims serve did not start within 30 s")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(timeout=15)

    @contextmanager
    def sibling(self, **env: str) -> Iterator[Server]:
        """A second `openims serve` process on the same database and data dir (so the same master key),
        with `env` added to this one's environment."""
        other = Server(self.backend, self.data_dir, self.database_url, free_port(), env={**self.env, **env})
        other.start()
        try:
            yield other
        finally:
            other.stop()

    def new_account(self) -> Account:
        alias = "t" + uuid.uuid4().hex[:12]
        new = accounts.create_account(self.runtime, alias)
        return Account(self, new.account_id, alias, new.access_key_id, new.access_key_secret)

    def close(self) -> None:
        self.stop()
        if self._runtime is not None:
            self._runtime.close()


def fresh_postgres_database(base_url: str) -> tuple[str, Any]:
    """Create a uniquely named database next to `base_url`'s; returns its URL and a function dropping it."""
    import sqlalchemy as sa

    url = sa.engine.make_url(config.normalize_database_url(base_url))
    name = "openims_t_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def start_server(tmp: Path, backend: str, extra_env: dict[str, str] | None = None) -> tuple[Server, Any]:
    """Initialize a data dir on `backend` and start `openims serve` on it; returns it and a cleanup."""
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    env.update(extra_env or {})
    drop = None
    if backend == "postgresql":
        url, drop = fresh_postgres_database(os.environ["OPENIMS_TEST_DATABASE_URL"])
        env["OPENIMS_DATABASE_URL"] = url
    else:
        url = f"sqlite:///{data_dir / 'openims.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(data_dir), "init", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    json.loads(out.stdout)
    server = Server(backend, data_dir, url, free_port(), env=env)
    server.start()

    def cleanup() -> None:
        server.close()
        if drop:
            drop()

    return server, cleanup


@contextmanager
def tmpfs_data_dir(tmp: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` MiB at tmp/data, to become a server's data dir (its log stays outside, in tmp).
    Mounting needs root: CI runs as root, so there a missing privilege fails the test instead of skipping it."""
    import pytest

    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the storage tests mount a tmpfs")
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp / "data"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path, leave: int = 0) -> Path:
    """A file that takes the file system's free space but `leave` bytes (all of it: until writes fail)."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        if leave:
            out.write(b"\0" * (shutil.disk_usage(directory).free - leave))
            return filler
        try:
            while True:
                out.write(b"\0" * (256 * 1024))
                out.flush()
        except OSError:
            pass
    return filler
