"""How fast SQL over the trail answers with 1,000,000 events stored (goal: a GROUP BY in under 2 s).

    . .venv/bin/activate
    python bench/query.py                                  # SQLite, 1,000,000 events, 5 timed runs per query
    python bench/query.py --events 200000 --repeat 3
    python bench/query.py --postgres postgresql://postgres@127.0.0.1:5432/test   # on a new PostgreSQL database

It initializes a data dir, bulk-loads events with `seed_events.py` (30 days, the mix described there; on
PostgreSQL seeded into a scratch SQLite file and copied, as console_history.py does), then runs each query as
`openims events query` does, in this process: an audited GetAdvancedQueryResult call through dispatch as the
account's root identity (the query engine, its read-only connection and limits, and the call's own event). Each
query runs once untimed, then `--repeat` times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from console_history import COLUMNS, run, seed_postgres
from seed_events import seed_events

from openims import config
from openims.cli import operator
from openims.errors import ApiError
from openims.runtime import open_runtime
from tests.support import fresh_postgres_database

GOAL_S = 2.0
QUERIES = (
    (
        "GROUP BY eventName (all events)",
        "SELECT eventName, count(*) AS n FROM events GROUP BY eventName ORDER BY n DESC",
    ),
    (
        "GROUP BY userName, Write only",
        "SELECT userName, count(*) FROM events WHERE eventRW = 'Write' GROUP BY userName",
    ),
    ("count of failures by errorCode", "SELECT errorCode, count(*) FROM events WHERE errorCode IS NOT NULL GROUP BY 1"),
    (
        "keys from > 3 IPs (preset)",
        (
            "SELECT accessKeyId, count(DISTINCT sourceIpAddress) AS ips FROM events WHERE accessKeyId <> '' "
            "GROUP BY accessKeyId HAVING count(DISTINCT sourceIpAddress) > 3"
        ),
    ),
    ("JSON: GROUP BY eventType", "SELECT eventType, count(*) FROM events GROUP BY eventType"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="run on a new PostgreSQL database next to URL's")
    parser.add_argument(
        "--seeded",
        metavar="DIR",
        help="reuse the data dir of an earlier `--keep` SQLite run (printed as kept .../data) instead of seeding; "
        "with --postgres its events are copied",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openims-query-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    drop = None
    if args.postgres:
        env["OPENIMS_DATABASE_URL"], drop = fresh_postgres_database(args.postgres)
    try:
        return measure(args, work, env)
    finally:
        if drop is not None and not args.keep:
            drop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def copy_seeded(db: Path, url: str, account_id: str) -> float:
    """COPY the events of an already seeded SQLite file into PostgreSQL, as the new deployment's account's."""
    import sqlite3

    import psycopg

    start = time.perf_counter()
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    lite = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    picked = ", ".join("? AS account_id" if c == "account_id" else c for c in COLUMNS)
    with psycopg.connect(plain) as pg:
        rows = lite.execute(f"SELECT {picked} FROM events ORDER BY seq", (account_id,))
        with pg.cursor() as cur, cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    lite.close()
    with psycopg.connect(plain, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE events")
    return time.perf_counter() - start


def measure(args: argparse.Namespace, work: Path, env: dict[str, str]) -> int:
    data = Path(args.seeded) if args.seeded and not args.postgres else work / "data"
    if data.exists():
        root = json.loads((data / "root-credentials.json").read_text())
        seconds = 0.0
    else:
        root = json.loads(run([sys.executable, "-m", "openims", "--data-dir", str(data), "init", "--json"], env))
    print(f"events from {args.seeded} ..." if args.seeded else f"seeding {args.events:,} events ...", flush=True)
    if args.seeded and not args.postgres:
        pass  # its events are there already
    elif args.postgres and args.seeded:
        seconds = copy_seeded(Path(args.seeded) / "openims.db", env["OPENIMS_DATABASE_URL"], root["AccountId"])
    elif args.postgres:
        seconds = seed_postgres(env["OPENIMS_DATABASE_URL"], work, root, "openims", args.events)
    else:
        seconds = seed_events(data / "openims.db", root["AccountId"], root["AccessKeyId"], args.events)
    print(f"seeded in {seconds:.1f}s", flush=True)
    url = env.get("OPENIMS_DATABASE_URL") or f"sqlite:///{data / 'openims.db'}"
    rt = open_runtime(config.Settings(data_dir=data, database_url=config.normalize_database_url(url)))
    worst = 0.0
    try:
        print(f"\n{'query':36} {'rows':>6} {'median s':>9} {'max s':>7}")
        for label, sql in QUERIES:
            params = {"QuerySql": sql, "MaxResults": "10000"}
            try:
                out = operator.call(rt, root["AccountId"], "GetAdvancedQueryResult", params)
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    operator.call(rt, root["AccountId"], "GetAdvancedQueryResult", params)
                    times.append(time.perf_counter() - start)
            except ApiError as err:  # the time limit, most likely: reported as the answer a user would get
                print(f"{label:36} {err.code}", flush=True)
                continue
            if label.startswith("GROUP BY eventName"):
                worst = statistics.median(times)
            print(f"{label:36} {out['RowCount']:>6} {statistics.median(times):>9.3f} {max(times):>7.3f}", flush=True)
    finally:
        rt.close()
    verdict = "within" if worst < GOAL_S else "OVER"
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\nGROUP BY eventName over {args.events:,} events: median {worst:.3f} s, {verdict} the {GOAL_S:.0f} s goal "
        f"({backend}; {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
