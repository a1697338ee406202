"""OpenIMS benchmark, run on demand (not part of the test suite). See bench/README.md.

python bench/run.py [--duration 10] [--concurrency 16] [--events 1000000] [--only openims,moto,ceiling]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from loadgen import Request, RequestFactory, Result, machine_busy_cpu, run, run_load
from seed_events import seed_events
from signer import self_test, sign_sigv4_form, sign_v3

HOST = "127.0.0.1"
IMS, TRAIL, RAM = "2019-08-15", "2020-07-06", "2015-05-01"
# The RAM user of the authorization scenario may read users, through three policies the evaluator must weigh.
BENCH_POLICY = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["ram:GetUser", "ram:ListUsers"], "Resource": "acs:ram:*:*:user/*"},
            {"Effect": "Deny", "Action": "ram:DeleteUser", "Resource": "*"},
        ],
    }
)
RAM_USER_POLICIES = (
    ("AliyunRAMReadOnlyAccess", "System"),
    ("AliyunActionTrailReadOnlyAccess", "System"),
    ("BenchReadUsers", "Custom"),
)
GET_POOL = 100  # users created before a GetUser run; GetUser cycles over them
# CreateUser must not run into RAM's per-account user quota, so it spreads users over fresh accounts sized
# for this many creates per second (above the ceiling app's rate on this machine); past that it wraps
# around and LimitExceeded.User shows in the errors column.
MAX_CREATE_RATE = 4000


class BenchError(Exception):
    """A scenario cannot run (missing command, server did not start, setup call failed)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def server(
    cmd: list[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen]:
    """Start a server subprocess, wait until its port accepts connections, stop it afterwards."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{cmd[0]} exited with {proc.returncode} before listening:\n{tail(log)}")
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{cmd[0]} did not listen on {port} within {timeout:.0f}s:\n{tail(log)}")
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def call(port: int, req: Request) -> tuple[int, bytes]:
    """One synchronous request, for setup steps outside the measured runs."""
    path, headers, body = req
    conn = HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def ensure_ok(what: str, status: int, body: bytes) -> bytes:
    if not 200 <= status < 300:
        raise BenchError(f"{what} failed: HTTP {status} {body[:500].decode(errors='replace')}")
    return body


def wait_quiet(limit: float) -> None:
    """Wait up to `limit` seconds until the machine's other load drops under a quarter core: on 2 cores
    a neighbour's test suite takes CPU from both the server and the generator."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = machine_busy_cpu()
        time.sleep(1.0)
        busy = machine_busy_cpu() - before
        if busy < 0.25:
            return
        print(f"    machine busy ({busy:.2f} cores), waiting ...", flush=True)


def load(name: str, port: int, make: RequestFactory, args: argparse.Namespace, pid: int) -> Result:
    wait_quiet(args.quiet_wait)
    print(f"  {name} ...", flush=True)
    return run(
        run_load(
            name,
            HOST,
            port,
            make,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            server_pid=pid,
            client=args.client,
        )
    )


def prefill(port: int, make: RequestFactory, n: int) -> None:
    """Create the GetUser pool (count mode, not measured); any failure stops the scenario."""
    r = run(run_load("prefill", HOST, port, make, concurrency=4, count=n))
    if r.error_count:
        raise BenchError(f"creating the GetUser pool failed: {r.error_text()}")


# --- OpenIMS ---------------------------------------------------------------------------------------


def openims_command() -> str:
    """The `openims` script of this venv, else one on PATH."""
    here = Path(sys.executable).parent / "openims"
    found = str(here) if here.exists() else shutil.which("openims")
    if not found:
        raise BenchError("the `openims` command is not installed (pip install -e /work/main in the venv)")
    return found


def user_quota() -> int:
    try:
        from openims.quotas import USERS

        return int(USERS)
    except (ImportError, AttributeError, ValueError):
        return 1000  # RAM's default


def openims_json(cmd: list[str], what: str) -> dict[str, str]:
    """Run an `openims ... --json` command that prints {AccountId, AccessKeyId, AccessKeySecret}."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        return {k: out[k] for k in ("AccountId", "AccessKeyId", "AccessKeySecret")}
    except (ValueError, KeyError, IndexError) as exc:
        raise BenchError(f"{what} printed no credentials: {proc.stdout[-500:]!r}") from exc


def scenario_openims(args: argparse.Namespace, work: Path) -> Iterator[Result]:
    exe = openims_command()
    data = work / "openims-data"
    root = openims_json([exe, "--data-dir", str(data), "init", "--json"], "openims init")
    quota = user_quota()
    n_accounts = math.ceil(MAX_CREATE_RATE * (args.duration + args.warmup) / quota)
    print(f"  creating {n_accounts} accounts for CreateUser ({quota} users each) ...", flush=True)
    with ThreadPoolExecutor(2) as pool:  # one CLI start per account; two at a time on two cores
        writers = list(
            pool.map(
                lambda i: openims_json(
                    [exe, "--data-dir", str(data), "account", "create", "--alias", f"benchc{i:03d}", "--json"],
                    "openims account create",
                ),
                range(n_accounts),
            )
        )
    if args.events:
        db = data / "openims.db"
        if not db.exists():
            raise BenchError(f"{db} not found: is OPENIMS_DATABASE_URL set to a non-SQLite database?")
        print(f"  seeding {args.events:,} events into {db} ...", flush=True)
        seconds = seed_events(db, root["AccountId"], root["AccessKeyId"], args.events)
        print(f"  seeded in {seconds:.1f}s", flush=True)

    port = free_port()
    authority = f"{HOST}:{port}"

    def req(action: str, params: dict[str, str], version: str = IMS, creds: dict[str, str] = root) -> Request:
        query, headers = sign_v3(creds["AccessKeyId"], creds["AccessKeySecret"], authority, action, version, params)
        return f"/?{query}", headers, b""

    def default_domain(creds: dict[str, str]) -> str:
        return json.loads(ensure_ok("GetDefaultDomain", *call(port, req("GetDefaultDomain", {}, creds=creds))))[
            "DefaultDomainName"
        ]

    def create(n: int) -> Request:
        i = n // quota % len(writers)
        return req("CreateUser", {"UserPrincipalName": f"u{n}@{domains[i]}", "DisplayName": f"u{n}"}, creds=writers[i])

    with server(
        [exe, "--data-dir", str(data), "serve", "--host", HOST, "--port", str(port)], port, work / "openims.log"
    ) as proc:
        domain = default_domain(root)
        domains = [default_domain(w) for w in writers]
        yield load("openims CreateUser", port, create, args, proc.pid)
        prefill(
            port, lambda n: req("CreateUser", {"UserPrincipalName": f"g{n}@{domain}", "DisplayName": f"g{n}"}), GET_POOL
        )
        yield load(
            "openims GetUser",
            port,
            lambda n: req("GetUser", {"UserPrincipalName": f"g{n % GET_POOL}@{domain}"}),
            args,
            proc.pid,
        )
        # The same reads by a RAM user whose three attached policies decide each call.
        ensure_ok(
            "CreateUser", *call(port, req("CreateUser", {"UserPrincipalName": f"reader@{domain}", "DisplayName": "r"}))
        )
        reader = json.loads(
            ensure_ok("CreateAccessKey", *call(port, req("CreateAccessKey", {"UserPrincipalName": f"reader@{domain}"})))
        )["AccessKey"]
        reader = {"AccessKeyId": reader["AccessKeyId"], "AccessKeySecret": reader["AccessKeySecret"]}
        ensure_ok(
            "CreatePolicy",
            *call(port, req("CreatePolicy", {"PolicyName": "BenchReadUsers", "PolicyDocument": BENCH_POLICY}, RAM)),
        )
        for name, kind in RAM_USER_POLICIES:
            ensure_ok(
                "AttachPolicyToUser",
                *call(
                    port, req("AttachPolicyToUser", {"PolicyName": name, "PolicyType": kind, "UserName": "reader"}, RAM)
                ),
            )
        yield load(
            "openims GetUser (RAM user, 3 policies)",
            port,
            lambda n: req("GetUser", {"UserPrincipalName": f"g{n % GET_POOL}@{domain}"}, creds=reader),
            args,
            proc.pid,
        )
        lookup = {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "GetUser", "MaxResults": "50"}
        ensure_ok("LookupEvents", *call(port, req("LookupEvents", lookup, TRAIL)))
        yield load(
            f"openims LookupEvents ({args.events:,} ev)",
            port,
            lambda n: req("LookupEvents", lookup, TRAIL),
            args,
            proc.pid,
        )
        # Once more with one connection: the query's own latency, without 15 others queued ahead of it.
        yield load(
            f"openims LookupEvents ({args.events:,} ev) c=1",
            port,
            lambda n: req("LookupEvents", lookup, TRAIL),
            argparse.Namespace(**{**vars(args), "concurrency": 1}),
            proc.pid,
        )
    if "Traceback" in (log := (work / "openims.log").read_text(errors="replace")):
        print(f"  note: the OpenIMS log holds tracebacks; see {work / 'openims.log'} (--keep)\n{log[-1500:]}")


# --- Reference 1: moto's IAM ---------------------------------------------------------------------------


def scenario_moto(args: argparse.Namespace, work: Path) -> Iterator[Result]:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise BenchError("moto_server not found: pip install 'moto[server]'")
    port = free_port()
    authority = f"{HOST}:{port}"

    def req(action: str, user: str) -> Request:
        body = urllib.parse.urlencode({"Action": action, "UserName": user, "Version": "2010-05-08"}).encode()
        return "/", sign_sigv4_form(authority, body), body

    with server([str(exe), "-H", HOST, "-p", str(port)], port, work / "moto.log") as proc:
        yield load("moto CreateUser", port, lambda n: req("CreateUser", f"u{n}"), args, proc.pid)
        prefill(port, lambda n: req("CreateUser", f"g{n}"), GET_POOL)
        yield load("moto GetUser", port, lambda n: req("GetUser", f"g{n % GET_POOL}"), args, proc.pid)


# --- Reference 2: the Starlette ceiling ----------------------------------------------------------------


def scenario_ceiling(args: argparse.Namespace, work: Path) -> Iterator[Result]:
    port = free_port()
    authority = f"{HOST}:{port}"
    ak, secret = "LTAI" + "B" * 20, "c" * 30
    # The same uvicorn settings as `openims serve`: one worker, uvloop + httptools, no access log.
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "ceiling_app:app",
        "--app-dir",
        str(BENCH),
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    env = {"CEILING_DB": str(work / "ceiling.db"), "CEILING_AK": ak, "CEILING_SECRET": secret}

    def make(n: int) -> Request:
        query, headers = sign_v3(
            ak,
            secret,
            authority,
            "CreateUser",
            IMS,
            {"UserPrincipalName": f"u{n}@bench.onaliyun.com", "DisplayName": f"u{n}"},
        )
        return f"/?{query}", headers, b""

    with server(cmd, port, work / "ceiling.log", env=env) as proc:
        yield load("ceiling verify+insert", port, make, args, proc.pid)


# --- Report --------------------------------------------------------------------------------------------


def report(results: dict[str, Result], args: argparse.Namespace) -> None:
    print(
        f"\nconcurrency {args.concurrency}, {args.duration:g}s per run after {args.warmup:g}s warm-up, "
        f"{args.client} client; "
        "req/s counts 2xx only; cpu = cores used (1.00 = one core)"
    )
    print(
        f"{'scenario':<42}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'srv cpu':>8}{'us/req':>8}{'gen cpu':>8}"
        f"{'other':>6}  errors"
    )
    for r in results.values():
        srv = f"{r.srv_cpu:.2f}" if r.srv_cpu is not None else "-"
        # Server CPU per completed response: barely moved by a busy neighbour, unlike req/s.
        per = f"{r.srv_cpu * r.seconds / len(r.latencies) * 1e6:.0f}" if r.srv_cpu and r.latencies else "-"
        print(
            f"{r.name:<42}{r.rps:>8.0f}{r.pct(50):>9.2f}{r.pct(99):>9.2f}{srv:>8}{per:>8}{r.gen_cpu:>8.2f}"
            f"{r.other_cpu:>6.2f}  {r.error_text()}"
        )
    if noisy := [r.name for r in results.values() if r.other_cpu > 0.25]:
        print(
            f"WARNING: other processes used more than a quarter core during: {', '.join(noisy)}; "
            "those figures are low. Rerun on a quiet machine."
        )

    def get(prefix: str) -> Result | None:
        return next((r for k, r in results.items() if k.startswith(prefix)), None)

    if get("openims") is None:
        return
    ceiling = get("ceiling")
    print("\nOpenIMS relative to the references (req/s ratio; >1 means OpenIMS is faster):")
    for action in ("CreateUser", "GetUser"):
        ours, moto = get(f"openims {action}"), get(f"moto {action}")
        if ours is None:
            continue
        parts = [
            f"vs moto {action}: {ours.rps / moto.rps:.2f}x" if moto and moto.rps else "vs moto: n/a",
            f"vs ceiling: {ours.rps / ceiling.rps:.2f}x" if ceiling and ceiling.rps else "vs ceiling: n/a",
        ]
        print(f"  {action:<11} " + "   ".join(parts))
    root_get, ram_get = get("openims GetUser"), get("openims GetUser (RAM")
    if root_get and ram_get and root_get.rps:
        print(
            f"  GetUser by a RAM user with 3 policies vs by the root key: {ram_get.rps / root_get.rps:.2f}x "
            "(goal: within 15%, i.e. >= 0.85x)"
        )

    print("\nGoals (reported, not asserted):")
    lookup = f"LookupEvents by EventName over {args.events:,} events p99 < 20 ms"
    for prefix, text, ok in (
        ("openims CreateUser", f"CreateUser >= 1000 req/s, concurrency {args.concurrency}", lambda r: r.rps >= 1000),
        ("openims GetUser", f"GetUser >= 2000 req/s, concurrency {args.concurrency}", lambda r: r.rps >= 2000),
        (
            f"openims LookupEvents ({args.events:,} ev)",
            f"{lookup}, concurrency {args.concurrency}",
            lambda r: r.pct(99) < 20,
        ),
        (f"openims LookupEvents ({args.events:,} ev) c=1", f"{lookup}, concurrency 1", lambda r: r.pct(99) < 20),
    ):
        r = results.get(prefix)
        if r is None:
            print(f"  {text:<78} not run")
            continue
        verdict = "MET" if ok(r) and not r.error_count and not math.isnan(r.pct(99)) else "NOT MET"
        detail = f"{r.rps:.0f} req/s, p99 {r.pct(99):.2f} ms" + (f", {r.error_count} errors" if r.error_count else "")
        print(f"  {text:<78} {verdict:<8} ({detail})")
    if args.events < 1_000_000:
        print(f"  (LookupEvents goal is defined at 1,000,000 events; this run stored {args.events:,})")


SCENARIOS = {"openims": scenario_openims, "moto": scenario_moto, "ceiling": scenario_ceiling}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)")
    p.add_argument("--concurrency", type=int, default=16, help="connections, one request in flight each (default 16)")
    p.add_argument("--events", type=int, default=1_000_000, help="events seeded before OpenIMS starts (default 1e6)")
    p.add_argument("--only", default="openims,moto,ceiling", help="comma-separated subset of: " + ",".join(SCENARIOS))
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator client: raw asyncio streams (default) or httpx.AsyncClient, for comparison",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other CPU load to stop (default 0)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary data dirs and server logs")
    args = p.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := [s for s in chosen if s not in SCENARIOS]:
        p.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")

    self_test()  # a wrong signer would turn every OpenIMS request into SignatureDoesNotMatch
    work = Path(tempfile.mkdtemp(prefix="openims-bench-"))
    results: dict[str, Result] = {}
    failed = False
    try:
        for name in chosen:
            print(f"[{name}]", flush=True)
            try:
                for r in SCENARIOS[name](args, work):
                    results[r.name] = r
            except BenchError as exc:
                failed = True
                print(f"  SKIPPED {name}: {exc}", flush=True)
        report(results, args)
    finally:
        if args.keep:
            print(f"\ndata dirs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
