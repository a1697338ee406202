"""The tamper-evident log at scale: seed events straight into a SQLite data dir, queue them for the log as the
migration does, time the sequencer appending and checkpointing all of them, then time `openims events verify`.
Then deliver `--trail-events` of them as a trail does (event files of 500 and their digest files, through the
deliverer's own code, to the bucket directory) and time `openims trail verify` over them.

python bench/integrity.py [--events 1000000] [--trail-events 100000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from seed_events import seed_events
from sqlalchemy import select

from openims import config
from openims.cli import operator
from openims.delivery import digests, outbox
from openims.delivery.batch import Batch
from openims.delivery.sinks.directory import DirectorySink
from openims.delivery.targets import OSS, Target
from openims.integrity import coverage, sequencer
from openims.runtime import open_runtime
from openims.store.schema import events
from openims.store.tables.integrity import log_leaves
from openims.store.tables.trails import trails


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--trail-events", type=int, default=100_000, help="events delivered, then `trail verify`ed")
    p.add_argument("--keep", action="store_true", help="keep the data dir (its path is printed)")
    args = p.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="openims-integrity-")) / "data"
    openims = [sys.executable, "-m", "openims", "--data-dir", str(data)]
    root = json.loads(subprocess.run([*openims, "init", "--json"], check=True, capture_output=True).stdout)
    db = data / "openims.db"
    seeded_s = seed_events(db, root["AccountId"], root["AccessKeyId"], args.events)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "INSERT INTO log_queue (account_id, event_id) SELECT account_id, event_id FROM events ORDER BY event_ms, seq"
    )
    conn.close()
    print(f"seeded and queued {args.events:,} events in {seeded_s:.1f} s")

    settings = replace(config.load(data), checkpoint_seconds=0.0)
    rt = open_runtime(settings)
    started = time.perf_counter()
    appended = 0
    while added := sequencer.advance(rt):
        appended += added
    append_s = time.perf_counter() - started
    rt.close()
    print(f"appended {appended:,} leaves with checkpoints in {append_s:.1f} s ({appended / append_s:,.0f} leaves/s)")

    started = time.perf_counter()
    out = subprocess.run([*openims, "events", "verify"], capture_output=True, text=True, check=False)
    verify_s = time.perf_counter() - started
    print(out.stdout.strip().splitlines()[0])
    print(f"`openims events verify`: {verify_s:.1f} s for {appended:,} events (exit {out.returncode})")
    trail_ok = trail_verify(data, openims, settings, root["AccountId"], min(args.trail_events, appended))
    if args.keep:
        print(f"data dir kept: {data}")
    else:
        shutil.rmtree(data.parent)
    return out.returncode or (0 if trail_ok else 1)


def trail_verify(data: Path, openims: list[str], settings: config.Settings, account_id: str, count: int) -> bool:
    """Deliver `count` events to a bucket directory with digests, then time `openims trail verify` on it."""
    rt = open_runtime(settings)
    operator.call(rt, account_id, "CreateTrail", {"Name": "bench-trail", "OssBucketName": "bench-bucket"})
    with rt.db.read() as conn:
        trail = conn.execute(select(trails).where(trails.c.name == "bench-trail")).one()
        # In log order, as a trail delivers them (it queues each event as it commits, the log appends it then).
        bodies = list(
            conn.execute(
                select(events.c.body)
                .join(log_leaves, log_leaves.c.event_id == events.c.event_id)
                .order_by(log_leaves.c.leaf_index)
                .limit(count)
            ).scalars()
        )
    target = Target(OSS, "bench-bucket", DirectorySink(data / "buckets" / account_id, "bench-bucket", ""))
    started = time.perf_counter()
    files = 0
    for first in range(0, len(bodies), outbox.MAX_BATCH):
        chunk = [json.loads(b) for b in bodies[first : first + outbox.MAX_BATCH]]
        covered = coverage.cover(rt, account_id, [e["eventId"] for e in chunk], sign=True)
        batch = Batch("bench-trail", account_id, settings.region, f"bench-trail-{first}", chunk, covered.leaves)
        digests.deliver(rt, trail, target, batch, covered)
        files += 1
    deliver_s = time.perf_counter() - started
    rt.close()
    print(f"delivered {len(bodies):,} events in {files:,} files with their digests in {deliver_s:.1f} s")
    keys = subprocess.run([*openims, "integrity", "public-key"], capture_output=True, text=True, check=True)
    pem = data / "pub.pem"
    pem.write_text(keys.stdout)
    bucket = data / "buckets" / account_id / "bench-bucket"
    started = time.perf_counter()
    out = subprocess.run(
        [*openims, "trail", "verify", "--dir", str(bucket), "--public-key", str(pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    verify_s = time.perf_counter() - started
    print(out.stdout.strip().splitlines()[0])
    print(
        f"`openims trail verify`: {verify_s:.1f} s for {files:,} files and {len(bodies):,} events "
        f"({files / verify_s:,.0f} files/s, {len(bodies) / verify_s:,.0f} events/s; exit {out.returncode})"
    )
    return out.returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
