"""LookupEvents by ResourceName (and ResourceType) over 1,000,000 events: each call's latency, and the query
plans that answer it from the resource index (event_resources), on SQLite or PostgreSQL.

    . .venv/bin/activate
    python bench/lookup_resources.py                       # SQLite, 1,000,000 events, 30 timed calls per query
    python bench/lookup_resources.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python bench/lookup_resources.py --events 200000 --repeat 10

It initializes a data dir, seeds events with `seed_events.py` (each names one resource, membership events two:
a group and a user; 2,000 users, so a user is named in about 500 events), starts `openims serve` and times signed
LookupEvents calls one at a time from the client (the whole call: signature, dispatch, the query, its own audit
event, JSON). Then it prints EXPLAIN (SQLite: QUERY PLAN; PostgreSQL: ANALYZE) of the statement the first
query runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from console_history import free_port, run, seed_postgres
from seed_events import seed_events
from signer import sign_v3

from tests.support import fresh_postgres_database

TRAIL = "2020-07-06"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="run on a new PostgreSQL database next to URL's")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openims-resources-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    drop = None
    if args.postgres:
        env["OPENIMS_DATABASE_URL"], drop = fresh_postgres_database(args.postgres)
    try:
        return measure(args, work, env)
    finally:
        if drop is not None and not args.keep:
            drop()  # type: ignore[operator]
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path, env: dict[str, str]) -> int:
    data = work / "data"
    exe = [sys.executable, "-m", "openims", "--data-dir", str(data)]
    root = json.loads(run([*exe, "init", "--json"], env))
    print(f"seeding {args.events:,} events ...", flush=True)
    if args.postgres:
        seconds = seed_postgres(env["OPENIMS_DATABASE_URL"], work, root, "openims", args.events)
    else:
        seconds = seed_events(data / "openims.db", root["AccountId"], root["AccessKeyId"], args.events)
    print(f"seeded in {seconds:.1f}s", flush=True)
    domain = json.loads(run([*exe, "account", "list", "--json"], env))[0]["DefaultDomain"]
    port = free_port()
    host = f"127.0.0.1:{port}"
    log = open(work / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen([*exe, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://{host}", timeout=60)

    def lookup(attributes: dict[str, str]) -> tuple[float, int]:
        params = {"MaxResults": "50", "StartTime": _iso(time.time() - 30 * 86400)}
        for i, (key, value) in enumerate(attributes.items(), 1):
            params[f"LookupAttribute.{i}.Key"], params[f"LookupAttribute.{i}.Value"] = key, value
        query, headers = sign_v3(root["AccessKeyId"], root["AccessKeySecret"], host, "LookupEvents", TRAIL, params)
        start = time.perf_counter()
        answer = client.post(f"/?{query}", headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        assert answer.status_code == 200, answer.text[:300]
        return elapsed, len(answer.json()["Events"])

    try:
        for _ in range(300):
            try:
                client.get("/console/signin", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        queries = [
            ("ResourceName=user7@... (~500 events)", {"ResourceName": f"user7@{domain}"}),
            ("ResourceName=group3 (membership events)", {"ResourceName": "group3"}),
            ("ResourceName + ResourceType", {"ResourceName": f"user7@{domain}", "ResourceType": "ACS::RAM::User"}),
            (
                "ResourceName + EventName=AddUserToGroup",
                {"ResourceName": f"user7@{domain}", "EventName": "AddUserToGroup"},
            ),
            ("ResourceType=ACS::RAM::Group", {"ResourceType": "ACS::RAM::Group"}),
            ("ResourceName=nobody (no event)", {"ResourceName": f"nobody@{domain}"}),
        ]
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\nLookupEvents, 30 days, MaxResults=50, {args.events:,} events, {backend}, one call at a time")
        print(f"{'query':48} {'rows':>5} {'median ms':>10} {'p95 ms':>8}")
        for label, attributes in queries:
            _, rows = lookup(attributes)
            times = sorted(lookup(attributes)[0] for _ in range(args.repeat))
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            print(f"{label:48} {rows:>5} {statistics.median(times):>10.1f} {p95:>8.1f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    explain(data, env, root["AccountId"], f"user7@{domain}", args.postgres is not None)
    return 0


def explain(data: Path, env: dict[str, str], account_id: str, name: str, postgres: bool) -> None:
    """The plan of the resource-led page query, as openims.audit.lookup builds it."""
    from sqlalchemy import text

    from openims import config
    from openims.audit import lookup
    from openims.runtime import open_runtime

    url = env.get("OPENIMS_DATABASE_URL") or f"sqlite:///{data / 'openims.db'}"
    rt = open_runtime(config.Settings(data_dir=data, database_url=config.normalize_database_url(url)))
    try:
        now = int(time.time() * 1000)
        q = lookup.Query(account_id, now - 30 * 86_400_000, now, (("ResourceName", name),), limit=50)
        captured: list[object] = []
        with rt.db.read() as conn:
            original = conn.execute

            def capture(statement, *a, **kw):  # type: ignore[no-untyped-def]
                captured.append(statement)
                return original(statement, *a, **kw)

            conn.execute = capture  # type: ignore[method-assign]
            lookup._by_resource(conn, q, None)
            conn.execute = original  # type: ignore[method-assign]
            compiled = captured[0].compile(conn, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
            prefix = "EXPLAIN ANALYZE " if postgres else "EXPLAIN QUERY PLAN "
            plan = conn.execute(text(prefix + str(compiled))).all()
        print(f"\n{prefix.strip()} of the ResourceName page query:")
        for row in plan:
            print("  " + " | ".join(str(c) for c in row))
    finally:
        rt.close()


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


if __name__ == "__main__":
    raise SystemExit(main())
