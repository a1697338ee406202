"""A small closed-loop HTTP/1.1 load generator: N workers, each on its own keep-alive connection, each
sending the next request as soon as the previous response is read.

The default client is raw asyncio streams on uvloop: on this 2-core machine the generator shares the
CPU with the server under test, so per-request client overhead directly lowers the measured server
rate. `client="httpx"` (httpx.AsyncClient) is kept for comparison; see bench/README.md for numbers.

Requests are built by a factory `make(n) -> (path_and_query, headers, body)` called once per request,
so every request carries a fresh signature, nonce and timestamp.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# (path with query, headers without content-length, body)
Request = tuple[str, dict[str, str], bytes]
RequestFactory = Callable[[int], Request]

_CODE_XML = re.compile(rb"<Code>([^<]*)</Code>")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, every completed response
    errors: Counter[str] = field(default_factory=Counter)  # "<status> <Code>" or "conn <exception>"
    gen_cpu: float = 0.0  # load generator CPU seconds / wall seconds (1.0 = one full core)
    srv_cpu: float | None = None  # server process tree, same unit
    other_cpu: float = 0.0  # everything else on the machine, same unit: high means a noisy run
    stall_ms: float | None = None  # the slowest /healthz probe during the run: the longest event-loop stall

    @property
    def rps(self) -> float:
        """Successful (2xx) responses per second: a fast error must not look like throughput."""
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def error_text(self) -> str:
        return ", ".join(f"{k} x{v}" for k, v in self.errors.most_common(4)) or "0"


def encode_request(host: str, req: Request) -> bytes:
    path, headers, body = req
    head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\n" if "host" not in headers else f"POST {path} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def error_key(status: int, body: bytes) -> str:
    """`<status> <Code>` from an Alibaba JSON error or an AWS XML error body."""
    code = ""
    try:
        code = str(json.loads(body).get("Code", ""))
    except (ValueError, AttributeError):
        m = _CODE_XML.search(body)
        code = m.group(1).decode(errors="replace") if m else ""
    return f"{status} {code}".strip()


def process_tree_cpu(pid: int) -> float:
    """User+system CPU seconds of `pid` and all its descendants (uvicorn may run in a child)."""
    ticks, tree = _proc_table(), process_tree_pids(pid)
    return sum(ticks[p][1] for p in tree if p in ticks) / _CLK_TCK


def process_tree_pids(pid: int) -> set[int]:
    """`pid` and all its descendants (the workers of `openims serve --workers N`)."""
    table = _proc_table()
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, (parent, _) in table.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def _proc_table() -> dict[int, tuple[int, int]]:
    """Each process's parent and user+system CPU ticks."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def machine_busy_cpu() -> float:
    """CPU seconds all cores spent not idle since boot (steal included: it is CPU we did not get)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK  # minus idle and iowait


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Conn:
    """One keep-alive connection with a minimal HTTP/1.1 response reader."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            body = await self._chunked()
        elif (i := lower.find(b"content-length:")) >= 0:
            body = await self.reader.readexactly(int(lower[i + 15 : lower.index(b"\r\n", i)]))
        else:  # no length: the body runs to the end of the connection
            body = await self.reader.read()
            self.close()
            return status, body
        # werkzeug (moto) may answer HTTP/1.0 or close; reconnect on the next request rather than fail.
        if b"connection: close" in lower or (head.startswith(b"HTTP/1.0") and b"keep-alive" not in lower):
            self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_load(
    name: str,
    host: str,
    port: int,
    make: RequestFactory,
    *,
    concurrency: int = 16,
    duration: float | None = 10.0,
    count: int | None = None,
    warmup: float = 1.0,
    server_pid: int | None = None,
    client: str = "raw",
) -> Result:
    """Run `concurrency` workers for `duration` seconds (after `warmup` seconds not recorded), or until
    `count` requests are done (then nothing is warm-up). Request numbers start at 0 and never repeat."""
    if count is not None:
        duration, warmup = None, 0.0
    result = Result(name)
    numbers = itertools.count()
    state = {"recording": warmup <= 0, "stop": False}
    authority = f"{host}:{port}"

    async def worker_raw() -> None:
        conn = _Conn(host, port)
        try:
            while not state["stop"]:
                n = next(numbers)
                if count is not None and n >= count:
                    return
                data = encode_request(authority, make(n))
                t = time.perf_counter()
                try:
                    status, body = await conn.request(data)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    status, body = -1, type(exc).__name__.encode()
                _record(status, body, time.perf_counter() - t)
        finally:
            conn.close()

    async def worker_httpx(http: httpx.AsyncClient) -> None:  # type: ignore[name-defined]
        while not state["stop"]:
            n = next(numbers)
            if count is not None and n >= count:
                return
            path, headers, body = make(n)
            t = time.perf_counter()
            try:
                resp = await http.post(f"http://{authority}{path}", headers=headers, content=body)
                status, content = resp.status_code, resp.content
            except httpx.HTTPError as exc:  # every transport failure httpx raises
                status, content = -1, type(exc).__name__.encode()
            _record(status, content, time.perf_counter() - t)

    def _record(status: int, body: bytes, elapsed: float) -> None:
        if not state["recording"]:
            return
        result.latencies.append(elapsed)
        if 200 <= status < 300:
            result.ok += 1
        elif status == -1:
            result.errors[f"conn {body.decode()}"] += 1
        else:
            result.errors[error_key(status, body)] += 1

    async def timer() -> None:
        if warmup > 0:
            await asyncio.sleep(warmup)
            state["recording"] = True
        marks.update(
            t0=time.perf_counter(),
            cpu0=_self_cpu(),
            all0=machine_busy_cpu(),
            srv0=process_tree_cpu(server_pid) if server_pid else 0.0,
        )
        if duration is not None:
            await asyncio.sleep(duration)
            state["stop"] = True

    marks: dict[str, float] = {}
    timer_task = asyncio.create_task(timer())
    await asyncio.sleep(0)  # let the timer take its marks first in count mode
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
            await asyncio.gather(*(worker_httpx(http) for _ in range(concurrency)))
    else:
        await asyncio.gather(*(worker_raw() for _ in range(concurrency)))
    await timer_task
    # Workers finish the request in flight after `stop`, so measure to now, not to the deadline.
    result.seconds = time.perf_counter() - marks["t0"]
    result.gen_cpu = (_self_cpu() - marks["cpu0"]) / result.seconds
    if server_pid:
        result.srv_cpu = (process_tree_cpu(server_pid) - marks["srv0"]) / result.seconds
    busy = (machine_busy_cpu() - marks["all0"]) / result.seconds
    result.other_cpu = max(0.0, busy - result.gen_cpu - (result.srv_cpu or 0.0))
    return result


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed: it roughly halves the generator's per-request CPU."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run(coro):  # type: ignore[no-untyped-def]
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
