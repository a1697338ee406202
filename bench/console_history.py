"""How fast the console's event history answers a filtered page with 1,000,000 events stored (goal: < 300 ms).

    . .venv/bin/activate
    python bench/console_history.py                       # 1,000,000 events, 20 timed requests per query
    python bench/console_history.py --events 200000 --repeat 10
    python bench/console_history.py --keep                # keep the data dir (path printed at the end)
    python bench/console_history.py --postgres postgresql://postgres@127.0.0.1:5432/test   # on PostgreSQL


It initializes a data dir (SQLite), sets the root console password with `openims account set-password`,
bulk-loads events with `seed_events.py` (30 days, the mix described there), starts `openims serve`, signs
in to the console over HTTP as a browser would, and times whole page requests (`GET /console/events?...`:
the LookupEvents call through dispatch with its own audit event, the page's chart aggregation on first
pages, and the HTML) from the client. Each query is requested once untimed, then `--repeat` times.

With `--postgres URL` the server runs on a new database created next to URL's (dropped at the end): the
events are seeded into a scratch SQLite file as above, then copied with COPY, then VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
from seed_events import seed_events

from tests.support import fresh_postgres_database

PASSWORD = "Bench-console-pass-1"
GOAL_MS = 300.0


def run(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=300, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed: {out.stderr.strip()[-800:]}")
    return out.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign_in(base: str, login: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    form = client.get("/console/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, "no sign-in form"
    done = client.post("/console/signin", data={"login": login, "password": PASSWORD, "csrf_token": token.group(1)})
    assert done.status_code == 303, done.text[:500]
    return client


def _ms(client: httpx.Client, path: str, params: dict[str, str] | None, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        page = client.get(path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        assert page.status_code == 200, page.text[-300:]
    return times


def timed(client: httpx.Client, params: dict[str, str], repeat: int) -> tuple[list[float], int, str | None, str | None]:
    """Milliseconds per page request, rows on the page, and its next-page and chart links."""
    first = client.get("/console/events", params=params)
    assert first.status_code == 200, first.text[-500:]
    rows = first.text.count('<a href="/console/events/')
    found = re.search(r'href="(/console/events\?[^"]*token=[^"]+)" rel="next"', first.text)
    chart = re.search(r'data-chart-src="([^"]+)"', first.text)
    return (
        _ms(client, "/console/events", params, repeat),
        rows,
        found.group(1).replace("&amp;", "&") if found else None,
        chart.group(1).replace("&amp;", "&") if chart else None,
    )


COLUMNS = (
    "event_id",
    "account_id",
    "event_ms",
    "event_name",
    "event_rw",
    "service_name",
    "user_name",
    "access_key_id",
    "resource_type",
    "resource_name",
    "error_code",
    "source_ip",
    "mfa_used",
    "principal_id",
    "event_type",
    "sensitive",
    "body",
)


def seed_postgres(url: str, work: Path, root: dict[str, str], alias: str, count: int) -> float:
    """seed_events into a scratch SQLite data dir (under the same account ID and alias), then COPY."""
    import sqlite3

    import psycopg

    start = time.perf_counter()
    scratch = work / "scratch"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    run([sys.executable, "-m", "openims", "--data-dir", str(scratch), "init", "--alias", "scratch", "--json"], env)
    db = scratch / "openims.db"
    lite = sqlite3.connect(db)
    lite.execute("INSERT INTO accounts (id, alias, created_ms) VALUES (?, ?, 0)", (root["AccountId"], alias))
    lite.commit()
    lite.close()
    seed_events(db, root["AccountId"], root["AccessKeyId"], count)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    lite = sqlite3.connect(db)
    with psycopg.connect(plain) as pg:
        # The copied events keep their order and their resource rows, numbered after the database's own events.
        offset = pg.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]  # type: ignore[index]
        rows = lite.execute(
            f"SELECT seq + ?, {', '.join(COLUMNS)} FROM events WHERE account_id = ? ORDER BY seq",
            (offset, root["AccountId"]),
        )
        with pg.cursor() as cur, cur.copy(f"COPY events (seq, {', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        resources = lite.execute(
            "SELECT event_seq + ?, resource_type, resource_name, account_id, event_ms FROM event_resources "
            "WHERE account_id = ?",
            (offset, root["AccountId"]),
        )
        columns = "event_seq, resource_type, resource_name, account_id, event_ms"
        with pg.cursor() as cur, cur.copy(f"COPY event_resources ({columns}) FROM STDIN") as copy:
            for row in resources:
                copy.write_row(row)
        pg.execute("SELECT setval(pg_get_serial_sequence('events', 'seq'), (SELECT max(seq) FROM events))")
    lite.close()
    with psycopg.connect(plain, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE events")
        pg.execute("VACUUM ANALYZE event_resources")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="run on a new PostgreSQL database next to URL's")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openims-console-bench-"))
    data = work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    drop = None
    if args.postgres:
        env["OPENIMS_DATABASE_URL"], drop = fresh_postgres_database(args.postgres)
    try:
        return measure(args, work, data, env)
    finally:
        if drop is not None and not args.keep:
            drop()  # type: ignore[operator]
        if args.keep:
            print(f"kept {work}" + (f" and the database {env['OPENIMS_DATABASE_URL']}" if drop else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path, data: Path, env: dict[str, str]) -> int:
    exe = [sys.executable, "-m", "openims", "--data-dir", str(data)]
    root = json.loads(run([*exe, "init", "--json"], env))
    run([*exe, "account", "set-password"], env, stdin=PASSWORD + "\n")
    print(f"seeding {args.events:,} events ...", flush=True)
    if args.postgres:
        seconds = seed_postgres(env["OPENIMS_DATABASE_URL"], work, root, "openims", args.events)
    else:
        seconds = seed_events(data / "openims.db", root["AccountId"], root["AccessKeyId"], args.events)
    print(f"seeded in {seconds:.1f}s", flush=True)

    port = free_port()
    log = open(work / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen([*exe, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/console/signin", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = sign_in(base, "openims")
        domain = json.loads(run([*exe, "account", "list", "--json"], env))[0]["DefaultDomain"]
        queries = [
            ("24 hours, no filter", {"range": "24h"}),
            ("7 days, EventName=CreateUser", {"range": "7d", "EventName": "CreateUser"}),
            ("30 days, EventName=Delete*", {"range": "30d", "EventName": "Delete*"}),
            ("30 days, User=dev7@...", {"range": "30d", "User": f"dev7@{domain}"}),
            ("30 days, ErrorCode=* (any failure)", {"range": "30d", "ErrorCode": "*"}),
            ("30 days, SourceIp + EventRW=Write", {"range": "30d", "SourceIpAddress": "10.12.0.8", "EventRW": "Write"}),
            ("30 days, MFA used", {"range": "30d", "MFAUsed": "true"}),
            ("30 days, EventName=GetUser, MFA not used", {"range": "30d", "EventName": "GetUser", "MFAUsed": "false"}),
            ("30 days, no filter (chart over all)", {"range": "30d"}),
        ]
        print(f"\n{'query':44} {'rows':>5} {'first page (ms)':>22} {'next page (ms)':>22} {'chart, after (ms)':>22}")
        print(f"{'':44} {'':>5}" + f" {'median':>10} {'p95':>10}" * 3)
        worst = 0.0
        for label, params in queries:
            times, rows, next_link, chart_link = timed(client, params, args.repeat)
            line = f"{label:44} {rows:>5} {statistics.median(times):>10.1f} {_p95(times):>10.1f}"
            worst = max(worst, statistics.median(times))
            if next_link:
                more = _ms(client, "/console/events", dict(httpx.URL(next_link).params), args.repeat)
                line += f" {statistics.median(more):>10.1f} {_p95(more):>10.1f}"
                worst = max(worst, statistics.median(more))
            else:
                line += f" {'-':>10} {'-':>10}"
            if chart_link:
                drawn = _ms(client, chart_link, None, args.repeat)
                line += f" {statistics.median(drawn):>10.1f} {_p95(drawn):>10.1f}"
            print(line, flush=True)
        verdict = "within" if worst < GOAL_MS else "OVER"
        print(
            f"\nslowest median page {worst:.1f} ms: {verdict} the {GOAL_MS:.0f} ms goal "
            f"({args.events:,} events seeded; {'PostgreSQL' if args.postgres else 'SQLite'}; {os.cpu_count()} CPUs)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return 0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    raise SystemExit(main())
