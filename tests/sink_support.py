"""Decoders for what the delivery sinks put on the wire, shared by the sink unit tests and the delivery e2e tests."""

from __future__ import annotations

import http.client
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import lz4.block
from aliyun.log.log_logs_pb2 import LogGroup


def parse_octet_counted(stream: bytes) -> list[bytes]:
    frames = []
    while stream:
        length, _, rest = stream.partition(b" ")
        assert length.isdigit(), stream[:40]
        frames.append(rest[: int(length)])
        stream = rest[int(length) :]
    return frames


SYSLOG_HEADER = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|\[[^\]]*\]) "
    rb"(?P<msg>.*)$",
    re.DOTALL,
)


def decode_put_logs_body(headers: http.client.HTTPMessage, body: bytes) -> LogGroup:
    """Undo the SDK's compression and parse the protobuf LogGroup it sends."""
    raw_size = int(headers["x-log-bodyrawsize"])
    compression = headers.get("x-log-compresstype", "")
    if compression == "lz4":
        body = lz4.block.decompress(body, uncompressed_size=raw_size)
    elif compression == "deflate":
        body = zlib.decompress(body)
    else:
        assert compression == "", compression
    assert len(body) == raw_size
    group = LogGroup()
    group.ParseFromString(body)
    return group


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
