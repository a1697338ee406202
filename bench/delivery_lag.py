"""Trail delivery lag: from an API response to its event's object being visible in an S3 server.

Starts `moto_server` (S3) and `openims serve` (SQLite by default, or `--database-url`) on loopback ports, creates
a bucket and a logging trail (EventRW All) delivering to it, then sends signed API calls at a steady open-loop
rate (default 200/s: UpdateUser and GetUser of one user, alternately) for `--duration` seconds.
A poller lists the bucket
every `--poll` seconds, reads each new object and notes when each requestId first became visible.
lag = visible time - response time; reported as p50/p90/p99/max (the poll interval bounds the resolution).

    . .venv/bin/activate
    python bench/delivery_lag.py                      # 200 events/s for 30 s on SQLite
    python bench/delivery_lag.py --rate 200 --duration 60 --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signer import sign_v3

IMS, TRAIL = "2019-08-15", "2020-07-06"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


class Api:
    """Signed RPC calls over one keep-alive connection per thread."""

    def __init__(self, port: int, key_id: str, secret: str) -> None:
        self.port, self.key_id, self.secret = port, key_id, secret
        self.local = threading.local()

    def call(self, action: str, version: str, params: dict[str, str]) -> dict:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        query, headers = sign_v3(self.key_id, self.secret, f"127.0.0.1:{self.port}", action, version, params)
        try:
            conn.request("POST", "/?" + query, headers=headers)
            response = conn.getresponse()
            body = json.loads(response.read())
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            raise
        if response.status >= 300:
            raise RuntimeError(f"{action}: HTTP {response.status} {body.get('Code')}")
        return body


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="API calls (events) per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of steady load")
    ap.add_argument("--threads", type=int, default=8, help="client threads")
    ap.add_argument("--poll", type=float, default=0.05, help="bucket listing interval, seconds")
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh database is created in it)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openims-lag-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    drop = None
    if args.database_url:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.support import fresh_postgres_database

        url, drop = fresh_postgres_database(args.database_url)
        env["OPENIMS_DATABASE_URL"] = url
    s3_port, api_port = free_port(), free_port()
    with open(work / "moto.log", "wb") as moto_log, open(work / "server.log", "wb") as server_log:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                    stdout=moto_log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_port(s3_port, procs[-1], "moto_server")
            endpoint = f"http://127.0.0.1:{s3_port}"
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
            )
            bucket = "lag-bench"
            s3.create_bucket(Bucket=bucket)

            data = work / "data"
            init = subprocess.run(
                [sys.executable, "-m", "openims", "--data-dir", str(data), "init", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            creds = json.loads(init.stdout)
            (data / "oss-buckets.json").write_text(
                json.dumps(
                    {
                        bucket: {
                            "endpoint_url": endpoint,
                            "access_key_id": "bench",
                            "secret_access_key": "bench",
                            "region": "us-east-1",
                        }
                    }
                )
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "openims", "--data-dir", str(data), "serve", "--port", str(api_port)],
                    env=env,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_port(api_port, procs[-1], "openims serve")

            api = Api(api_port, creds["AccessKeyId"], creds["AccessKeySecret"])
            domain = api.call("GetDefaultDomain", IMS, {})["DefaultDomainName"]
            upn = f"bench@{domain}"
            api.call("CreateUser", IMS, {"UserPrincipalName": upn, "DisplayName": "bench"})
            api.call("CreateTrail", TRAIL, {"Name": "lag-trail", "OssBucketName": bucket, "EventRW": "All"})
            api.call("StartLogging", TRAIL, {"Name": "lag-trail"})

            responded: dict[str, float] = {}
            seen: dict[str, float] = {}
            stop_poll = threading.Event()

            def poll() -> None:
                known: set[str] = set()
                while not stop_poll.is_set():
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                        for obj in page.get("Contents", []):
                            if obj["Key"] in known:
                                continue
                            visible = time.time()
                            known.add(obj["Key"])
                            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                            for event in json.loads(gzip.decompress(body)):
                                seen.setdefault(event["requestId"], visible)
                    stop_poll.wait(args.poll)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()

            total = int(args.rate * args.duration)
            start = time.monotonic() + 0.5
            counter = iter(range(total))
            lock = threading.Lock()
            errors: list[str] = []
            late = [0]

            def worker() -> None:
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    due = start + n / args.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    elif delay < -0.05:
                        late[0] += 1
                    try:
                        if n % 2 == 0:
                            body = api.call(
                                "UpdateUser", IMS, {"UserPrincipalName": upn, "NewDisplayName": f"bench {n}"}
                            )
                        else:
                            body = api.call("GetUser", IMS, {"UserPrincipalName": upn})
                        responded[body["RequestId"]] = time.time()
                    except Exception as exc:  # noqa: BLE001  (report, keep the rate)
                        errors.append(str(exc))

            threads = [threading.Thread(target=worker) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent_s = time.monotonic() - start
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not set(responded) <= set(seen):
                time.sleep(0.2)
            stop_poll.set()
            poller.join()

            lags = [seen[r] - t for r, t in responded.items() if r in seen]
            missing = len(set(responded) - set(seen))
            print(
                f"sent {len(responded)} calls in {sent_s:.1f} s ({len(responded) / sent_s:.0f}/s, {late[0]} sent >50 "
                "ms late), "
                f"errors {len(errors)}" + (f" (first: {errors[0]})" if errors else "")
            )
            print(f"delivered {len(lags)}; missing after 60 s: {missing}")
            if lags:
                print(
                    f"lag (response -> object visible in S3; poll every {args.poll * 1000:.0f} ms): "
                    f"p50 {percentile(lags, 50):.2f} s  p90 {percentile(lags, 90):.2f} s  "
                    f"p99 {percentile(lags, 99):.2f} s  max {max(lags):.2f} s"
                )
            return 0 if lags and not missing else 1
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if drop:
                drop()
            if args.keep:
                print(f"kept {work}")
            else:
                import shutil

                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
