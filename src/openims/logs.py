"""How the process logs: plain lines (the default) or one JSON object a line (`--log-format json`).

Everything goes through the root logger, uvicorn's own loggers included (`serve` runs uvicorn with
`log_config=None`, so uvicorn adds no handler or format of its own), so both formats hold for every line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("plain", "json")
# Fields a record may carry as logging `extra` (the per-request line of openims.api, the limits' lines), copied
# into the JSON object when present. Nothing else is: uvicorn's `color_message`, for one, is not wanted.
EXTRA_FIELDS = ("request_id", "action", "version", "principal", "result", "status", "duration_ms", "source_ip")

_format = "plain"
# The exception hooks the JSON format replaced, put back when the plain one is configured again.
_saved_hooks: list[Any] = []


class JsonFormatter(logging.Formatter):
    """One JSON object a record: time (ISO 8601, UTC, milliseconds), level, logger, message, the EXTRA_FIELDS it
    carries, and a traceback as one `exc` string. Non-ASCII is escaped, so no character a log reader might take
    for a line break (U+2028, NEL, ...) ever appears raw: one record is one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def configure(fmt: str = "plain") -> None:
    """Log INFO and above to stderr in the given format ("plain" or "json")."""
    global _format
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    _format = fmt
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        # Python warnings and uncaught exceptions would otherwise reach stderr as raw, multi-line text.
        logging.captureWarnings(True)
        if sys.excepthook is not _log_uncaught:
            _saved_hooks[:] = [sys.excepthook, threading.excepthook]
            sys.excepthook = _log_uncaught
            threading.excepthook = _log_uncaught_in_thread
    else:
        logging.basicConfig(level=logging.INFO, format=PLAIN, force=True)
        logging.captureWarnings(False)
        if sys.excepthook is _log_uncaught:  # put back whatever was there before (a test runner's, say)
            sys.excepthook, threading.excepthook = _saved_hooks


def current_format() -> str:
    return _format


def announce(message: str) -> None:
    """Tell the operator something at startup: printed as is in the plain format, a log record in JSON (where a
    bare line among the JSON ones would break whatever reads them)."""
    if _format == "json":
        logging.getLogger("openims.serve").info(message)
    else:
        print(message, flush=True)


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("openims").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger("openims").error(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
