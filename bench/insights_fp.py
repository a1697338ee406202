"""The insight detector's false-positive rate: seed many days of an account's normal activity (the seeder of
tests/insight_support.py: callers working from their own addresses with their usual calls, console users
signing in and now and then mistyping a password), switch every insight type on, and run the detector in-process
over the days after the first week (the baseline) with the clock moved window by window. Every insight it opens
on this traffic is a false positive: the traffic has nothing unusual in it by construction.

python bench/insights_fp.py [--days 28] [--users 8] [--seed 1] [--postgres URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.insight_support

from sqlalchemy import insert, select

from openims import accounts, clock, config
from openims.insights import catalogue
from openims.insights.detector import SETTLE_MS, Detector, Timing
from openims.runtime import open_runtime
from openims.store.tables.insights import insight_types, insights
from tests.insight_support import root_caller, seed_week, user_caller
from tests.support import fresh_postgres_database

WINDOW_MS = 60_000
STEP_MS = 15 * WINDOW_MS  # how far the clock moves between detector rounds (each round judges every window)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--users", type=int, default=8, help="RAM users with AccessKeys, besides root")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--postgres", help="a PostgreSQL URL to create a scratch database next to (default: SQLite)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        url = f"sqlite:///{Path(tmp) / 'openims.db'}"
        if args.postgres:
            url, drop = fresh_postgres_database(args.postgres)
        rt = open_runtime(
            config.Settings(data_dir=Path(tmp) / "data", database_url=config.normalize_database_url(url)), create=True
        )
        try:
            return _run(rt, args)
        finally:
            clock.freeze(None)
            rt.close()
            if drop:
                drop()


def _run(rt, args) -> int:  # type: ignore[no-untyped-def]
    end = clock.now_ms() // WINDOW_MS * WINDOW_MS
    start = end - args.days * clock.DAY_MS
    new = accounts.create_account(rt, "fp" + uuid.uuid4().hex[:10])
    account_id = new.account_id
    with rt.db.transaction() as conn:
        for t in catalogue.TYPES:
            conn.execute(
                insert(insight_types).values(account_id=account_id, insight_type=t, enabled=True, updated_ms=0)
            )
    callers = [root_caller(account_id, new.access_key_id, ("10.0.0.1",), busy=4.0)]
    for i in range(args.users):
        ips = (f"10.0.{i + 1}.10",) if i % 2 else (f"10.0.{i + 1}.10", f"10.0.{i + 1}.11")
        callers.append(
            user_caller(account_id, f"u{i}", f"user{i}@fp.onaliyun.com", f"LTAIfp{i:018d}", ips, busy=6.0 + i)
        )
    signins = tuple((account_id, f"person{i}@fp.onaliyun.com", f"10.9.0.{i + 1}") for i in range(3))
    began = time.monotonic()
    clock.freeze(start / 1000)  # events are recorded as "now" is at their start: their queue times are sane
    seeded = seed_week(rt, callers, days=args.days, end_ms=end, seed=args.seed, signins=signins)
    seeding_s = time.monotonic() - began

    detector = Detector(rt, Timing(interval_s=1.0, window_ms=WINDOW_MS))
    judged_from = start + catalogue.BASELINE_MS
    began = time.monotonic()
    at = judged_from
    while at <= end + SETTLE_MS + WINDOW_MS:
        clock.freeze(at / 1000)
        detector.run_once()
        at += STEP_MS
    detecting_s = time.monotonic() - began

    with rt.db.read() as conn:
        rows = conn.execute(
            select(insights.c.insight_type, insights.c.start_ms, insights.c.details).where(
                insights.c.account_id == account_id
            )
        ).all()
    by_type = Counter(r.insight_type for r in rows)
    judged_days = (end - judged_from) / clock.DAY_MS
    windows = int((end - judged_from) / WINDOW_MS)
    print(f"seeded {seeded:,} events over {args.days} days ({len(callers)} AccessKeys, {len(signins)} console users) "
          f"in {seeding_s:.1f} s")  # fmt: skip
    print(f"detector: {judged_days:.0f} days judged after the 7-day baseline, {windows:,} one-minute windows, "
          f"in {detecting_s:.1f} s")  # fmt: skip
    for t in catalogue.TYPES:
        print(f"  {t:22} {by_type.get(t, 0):4d} insights")
    total = sum(by_type.values())
    print(f"false positives: {total} in {judged_days:.0f} days = {total / judged_days:.2f} per day; "
          f"{total / max(1, windows) * 100:.4f}% of windows")  # fmt: skip
    for r in rows[:10]:
        print("  e.g.", r.insight_type, clock.iso(r.start_ms), r.details[:160])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
