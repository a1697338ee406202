"""`openims serve --workers N`: N processes answer on one listening socket, which this supervisor opens
before it forks them (each worker opens its own database connections and runs its own event loop). A worker
that dies is replaced; SIGTERM or SIGINT stops them all gracefully."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("openims.workers")
# A worker that dies sooner than this after it started is replaced only after this long, so a worker that
# cannot start does not fork in a loop.
RESTART_DELAY_S = 1.0
_PR_SET_PDEATHSIG = 1


def supervise(count: int, sock: socket.socket, worker: Callable[[socket.socket], None]) -> int:
    """Run `worker(sock)` in `count` child processes until told to stop; returns the exit status."""
    children: dict[int, float] = {}
    stopping = False

    supervisor = os.getpid()

    def start() -> None:
        pid = os.fork()
        if pid == 0:
            _exit_with_parent(supervisor)
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                worker(sock)
                code = 0
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        start()
    log.info("serving with %d worker processes: %s", count, ", ".join(map(str, children)))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        log.error("worker %d exited (%s); starting another", pid, _describe(status))
        if time.monotonic() - started < RESTART_DELAY_S:
            time.sleep(RESTART_DELAY_S)
        if not stopping:
            start()
    sock.close()
    return 0


def _exit_with_parent(supervisor: int) -> None:
    """Linux: the kernel sends this worker SIGTERM when the supervisor dies, even by kill -9, so no worker keeps
    answering without it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != supervisor:  # it died before the request above took effect
        os._exit(1)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"
