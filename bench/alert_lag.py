"""Alert lag and the cost of alert rules on the write path.

Lag (default): starts `openims serve` (SQLite by default, or `--database-url`) and an HTTPS webhook receiver
on loopback (a throwaway CA trusted through OPENIMS_DELIVERY_CA_FILE), creates one rule firing on every
UpdateUser (`LookupAttribute EventName=UpdateUser`, to the webhook), then sends UpdateUser calls at a steady
open-loop rate for `--duration` seconds. lag = the webhook receiving the alert - the call's response (its
commit); reported as p50/p90/p99/max.

Throughput (`--throughput`): closed-loop writes (UpdateUser) from `--threads` connections for `--duration`
seconds, alternately with no alert rule and with every preset switched on (each to the webhook),
`--rounds` times each; prints calls/s of each round and the ratio of the medians (on / off). None of the
calls triggers a preset, so this is the cost every call pays for the rules being evaluated.

    . .venv/bin/activate
    python bench/alert_lag.py                                   # 20 alerts/s for 30 s on SQLite
    python bench/alert_lag.py --rate 50 --duration 60 --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/alert_lag.py --throughput --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from delivery_lag import IMS, TRAIL, Api, free_port, percentile, wait_port

from tests.sink_support import make_pki

SECRET = "bench-webhook-secret-0123456789"
PRESETS = (
    "RootSignin",
    "SigninWithoutMFA",
    "TrailChanged",
    "AdministratorAccessAttached",
    "RootAccessKeyCreated",
    "SecuritySettingsWeakened",
    "MFAUnbound",
    "NoPermissionBurst",
    "SigninFailureBurst",
)


def receiver(pki_dir: Path) -> tuple[str, dict[str, float], http.server.ThreadingHTTPServer]:
    """An HTTPS endpoint noting when each alert's triggering request first arrived."""
    pki = make_pki(pki_dir)
    seen: dict[str, float] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrived = time.time()
            alert = json.loads(body)
            if alert.get("event"):
                seen.setdefault(alert["event"]["requestId"], arrived)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = pki.server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{httpd.server_address[1]}/alerts", seen, httpd


def steady(api: Api, upn: str, rate: float, duration: float, threads: int) -> tuple[dict[str, float], list[str]]:
    """UpdateUser at `rate` per second (open loop); returns request ID -> response time, and the errors."""
    responded: dict[str, float] = {}
    errors: list[str] = []
    total = int(rate * duration)
    start = time.monotonic() + 0.5
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                body = api.call("UpdateUser", IMS, {"UserPrincipalName": upn, "NewDisplayName": f"lag {n}"})
                responded[body["RequestId"]] = time.time()
            except Exception as exc:  # noqa: BLE001  (report, keep the rate)
                errors.append(str(exc))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return responded, errors


def closed_loop(api: Api, upn: str, duration: float, threads: int) -> float:
    """Writes per second from `threads` connections, each with one call in flight."""
    done = [0] * threads
    stop = time.monotonic() + duration

    def worker(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            try:
                api.call("UpdateUser", IMS, {"UserPrincipalName": upn, "NewDisplayName": f"t{i}-{n}"})
            except (OSError, http.client.HTTPException):
                continue  # the server closed an idle keep-alive connection: Api reconnects on the next call
            n += 1
        done[i] = n

    began = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.monotonic() - began)


def manage(api: Api, action: str, params: dict[str, str]) -> None:
    """A rule change, sent again once if the server had closed this thread's idle keep-alive connection."""
    try:
        api.call(action, TRAIL, params)
    except (OSError, http.client.HTTPException):
        api.call(action, TRAIL, params)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0, help="alert-raising calls per second (lag mode)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (per round in throughput mode)")
    ap.add_argument("--threads", type=int, default=8, help="client connections")
    ap.add_argument("--throughput", action="store_true", help="measure write throughput with all presets on vs off")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each (throughput mode)")
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh database is created in it)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openims-alert-lag-"))
    url, seen, httpd = receiver(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    env.update(
        OPENIMS_DELIVERY_CA_FILE=str(work / "ca.pem"),
        OPENIMS_EGRESS_ALLOW="127.0.0.1",  # the receiver is on loopback
    )
    drop = None
    if args.database_url:
        from tests.support import fresh_postgres_database

        db_url, drop = fresh_postgres_database(args.database_url)
        env["OPENIMS_DATABASE_URL"] = db_url
    port = free_port()
    data = work / "data"
    proc = None
    try:
        init = subprocess.run(
            [sys.executable, "-m", "openims", "--data-dir", str(data), "init", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        creds = json.loads(init.stdout)
        with open(work / "server.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "openims", "--data-dir", str(data), "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_port(port, proc, "openims serve")
        api = Api(port, creds["AccessKeyId"], creds["AccessKeySecret"])
        domain = api.call("GetDefaultDomain", IMS, {})["DefaultDomainName"]
        upn = f"bench@{domain}"
        api.call("CreateUser", IMS, {"UserPrincipalName": upn, "DisplayName": "bench"})
        hook = {"WebhookUrl": url, "WebhookSecret": SECRET}

        if args.throughput:
            rates: dict[str, list[float]] = {"off": [], "on": []}
            closed_loop(api, upn, 2.0, args.threads)  # warm-up
            for _ in range(args.rounds):
                rates["off"].append(closed_loop(api, upn, args.duration, args.threads))
                for preset in PRESETS:
                    manage(api, "CreateAlertRule", {"RuleName": preset, "Preset": preset, **hook})
                rates["on"].append(closed_loop(api, upn, args.duration, args.threads))
                for preset in PRESETS:
                    manage(api, "DeleteAlertRule", {"RuleName": preset})
            off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
            print("writes/s with no rule:       " + "  ".join(f"{r:.0f}" for r in rates["off"]))
            print(f"writes/s with {len(PRESETS)} presets on:  " + "  ".join(f"{r:.0f}" for r in rates["on"]))
            print(f"median on/off: {on:.0f}/{off:.0f} = {on / off:.3f}x")
            return 0

        api.call(
            "CreateAlertRule",
            TRAIL,
            {"RuleName": "lag", "LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "UpdateUser", **hook},
        )
        began = time.monotonic()
        responded, errors = steady(api, upn, args.rate, args.duration, args.threads)
        sent_s = time.monotonic() - began
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(responded) <= set(seen):
            time.sleep(0.2)
        lags = [seen[r] - t for r, t in responded.items() if r in seen]
        missing = len(set(responded) - set(seen))
        print(
            f"sent {len(responded)} alert-raising calls in {sent_s:.1f} s ({len(responded) / sent_s:.1f}/s), "
            f"errors {len(errors)}" + (f" (first: {errors[0]})" if errors else "")
        )
        print(f"alerts received {len(lags)}; missing after 60 s: {missing}")
        if lags:
            print(
                "lag (response -> webhook): "
                f"p50 {percentile(lags, 50):.2f} s  p90 {percentile(lags, 90):.2f} s  "
                f"p99 {percentile(lags, 99):.2f} s  max {max(lags):.2f} s"
            )
        return 0 if lags and not missing else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        httpd.shutdown()
        if drop:
            drop()
        if args.keep:
            print(f"kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
