"""The tamper-evident log at scale: seed events straight into a SQLite data dir, queue them for the log as the
migration does, time the sequencer appending and checkpointing all of them, then time `openims events verify`.

python bench/integrity.py [--events 1000000] [--keep]
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

from openims import config
from openims.integrity import sequencer
from openims.runtime import open_runtime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
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
    if args.keep:
        print(f"data dir kept: {data}")
    else:
        shutil.rmtree(data.parent)
    return out.returncode


if __name__ == "__main__":
    raise SystemExit(main())
