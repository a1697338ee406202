"""How fast the AccessKey activity actions (GetAccessKeyLastUsed*) and DescribeUserLogCount answer over many
stored events (SQLite, in-process through dispatch, as the CLI calls actions).

    . .venv/bin/activate
    python bench/key_activity.py                          # 1,000,000 events, 10 timed calls per action
    python bench/key_activity.py --events 200000 --repeat 5

It initializes a data dir, bulk-loads events with `seed_events.py` (30 days; the root key makes about a third of
them, from 6 addresses), then times each action on the root key (the busiest key) after one untimed call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from seed_events import seed_events

from openims import config
from openims.cli.operator import call
from openims.runtime import open_runtime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openims-bench-") as tmp:
        data = Path(tmp) / "data"
        out = subprocess.run(
            [sys.executable, "-m", "openims", "--data-dir", str(data), "init", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        root = json.loads(out.stdout)
        seconds = seed_events(data / "openims.db", root["AccountId"], root["AccessKeyId"], args.events)
        print(f"seeded {args.events:,} events in {seconds:.1f} s")
        rt = open_runtime(config.Settings(data_dir=data, database_url=f"sqlite:///{data / 'openims.db'}"))
        key = {"AccessKey": root["AccessKeyId"]}
        calls = {
            "GetAccessKeyLastUsedInfo": key,
            "GetAccessKeyLastUsedProducts": key,
            "GetAccessKeyLastUsedIps": {**key, "ServiceName": "Ims"},
            "GetAccessKeyLastUsedEvents": {**key, "ServiceName": "Ims"},
            "GetAccessKeyLastUsedResources": {**key, "ServiceName": "Ims"},
            "DescribeUserLogCount": {},
        }
        try:
            for name, params in calls.items():
                answer = call(rt, root["AccountId"], name, params)
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    call(rt, root["AccountId"], name, params)
                    times.append((time.perf_counter() - start) * 1000)
                listed = next((len(v) for v in answer.values() if isinstance(v, list)), "")
                print(
                    f"{name:32} median {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms"
                    f"  {f'({listed} listed)' if listed != '' else ''}"
                )
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
