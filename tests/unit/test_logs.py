"""The two log formats: plain lines by default, one JSON object a line with `--log-format json`, uvicorn's
lines included."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import uvicorn

from openims import logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        logs.configure("plain")  # gives back the exception hooks the JSON format took
        root.handlers[:] = handlers
        root.setLevel(level)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_has_the_fields_and_the_request_extras(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    extra = {
        "request_id": "R-1",
        "action": "GetUser",
        "version": "2019-08-15",
        "principal": "alice@x.onaliyun.com",
        "result": "Success",
        "status": 200,
        "duration_ms": 1.5,
        "source_ip": "10.0.0.1",
        "color_message": "not wanted",
        "password": "not a field either",
    }
    logging.getLogger("openims.api").info("GetUser %s", "done", extra=extra)
    logging.getLogger("openims.other").warning("plain record")
    first, second = json_lines(capsys.readouterr().err)
    assert first == {
        "time": first["time"],
        "level": "INFO",
        "logger": "openims.api",
        "message": "GetUser done",
        **{k: v for k, v in extra.items() if k in logs.EXTRA_FIELDS},
    }
    stamp = datetime.fromisoformat(str(first["time"]))
    assert str(first["time"]).endswith("Z") and stamp.tzinfo is not None and stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 3600
    assert second == {"time": second["time"], "level": "WARNING", "logger": "openims.other", "message": "plain record"}


def test_an_exception_is_one_exc_field_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("openims.api").exception("failed\u2028with a\nmultiline message\x85")
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and out.endswith("\n")
    (record,) = json_lines(out)
    assert record["message"] == "failed\u2028with a\nmultiline message\x85"
    exc = str(record["exc"])
    assert exc.startswith("Traceback (most recent call last):") and "ValueError: bad\nthing" in exc
    assert "\u2028" not in out and "\x85" not in out  # escaped: no reader takes them for line breaks


def test_values_json_cannot_hold_are_written_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    logging.getLogger("openims").info("x", extra={"principal": object(), "status": b"\xff"})
    (record,) = json_lines(capsys.readouterr().err)
    assert str(record["principal"]).startswith("<object object") and record["status"] == "b'\\xff'"


def test_uvicorn_lines_come_out_in_our_format(capsys: pytest.CaptureFixture[str]) -> None:
    """serve() runs uvicorn with log_config=None: uvicorn then adds no handler of its own and its records reach
    the root logger, in whichever format is configured; its access log stays off."""
    for fmt in ("json", "plain"):
        logs.configure(fmt)
        uvicorn.Config(app=lambda: None, log_config=None, log_level="info", access_log=False)
        started = "Started server process [%d]"
        logging.getLogger("uvicorn.error").info(started, 42, extra={"color_message": "\x1b[36m42\x1b[0m"})
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /?Password=secret HTTP/1.1" 200')
        (line,) = capsys.readouterr().err.splitlines()
        if fmt == "json":
            assert json.loads(line)["logger"] == "uvicorn.error"
            assert json.loads(line)["message"] == "Started server process [42]" and "color" not in line
        else:
            assert line.endswith(" INFO uvicorn.error: Started server process [42]")


def test_plain_stays_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json")
    logs.configure()
    assert logs.current_format() == "plain"
    logging.getLogger("openims.api").info("hello", extra={"request_id": "R-1"})
    line = capsys.readouterr().err.rstrip("\n")
    assert line.endswith(" INFO openims.api: hello") and not line.startswith("{")


def test_json_takes_over_warnings_and_uncaught_exceptions_and_gives_them_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = (sys.excepthook, threading.excepthook)
    logs.configure("json")
    logs.configure("json")  # twice: what it replaced is still what it gives back
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    (record,) = json_lines(capsys.readouterr().err)
    assert record["level"] == "CRITICAL" and "RuntimeError: boom" in str(record["exc"])
    logs.configure("plain")
    assert (sys.excepthook, threading.excepthook) == before


def test_announce_prints_in_plain_and_logs_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("plain")
    logs.announce("OpenIMS serving on http://127.0.0.1:8470/")
    assert capsys.readouterr().out == "OpenIMS serving on http://127.0.0.1:8470/\n"
    logs.configure("json")
    logs.announce("OpenIMS serving on http://127.0.0.1:8470/")
    captured = capsys.readouterr()
    assert captured.out == ""
    (record,) = json_lines(captured.err)
    assert record["message"] == "OpenIMS serving on http://127.0.0.1:8470/" and record["logger"] == "openims.serve"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format"):
        logs.configure("xml")
