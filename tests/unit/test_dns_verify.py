"""The stdlib DNS TXT client against a local DNS server, and the offline override file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from openims.federation import dns_verify
from tests.fake_dns import FakeDns, dead_port


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    fake = FakeDns()
    monkeypatch.setenv("OPENIMS_DNS_SERVER", fake.address)
    monkeypatch.delenv("OPENIMS_DNS_TXT_OVERRIDES_FILE", raising=False)
    yield fake
    fake.close()


def test_txt_records_are_read_and_joined(dns: FakeDns) -> None:
    dns.records["example.com"] = ["v=spf1 -all", "openims-domain-verification=abc", "x" * 600]
    assert dns_verify.lookup_txt("Example.COM.") == ["v=spf1 -all", "openims-domain-verification=abc", "x" * 600]
    # 600 characters travel as three character-strings and come back as one value; the answer exceeds 512
    # bytes, so the UDP reply is truncated and the client asks again over TCP.
    assert [proto for proto, _ in dns.queries] == ["udp", "tcp"]


def test_absent_name_has_no_records_and_server_failure_is_an_error(dns: FakeDns) -> None:
    assert dns_verify.lookup_txt("missing.example.com") == []
    dns.records["broken.example.com"] = "SERVFAIL"
    with pytest.raises(dns_verify.DnsError, match="error code 2"):
        dns_verify.lookup_txt("broken.example.com")


def test_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENIMS_DNS_SERVER", f"127.0.0.1:{dead_port()}")
    monkeypatch.setenv("OPENIMS_DNS_TIMEOUT_SECONDS", "0.5")
    monkeypatch.delenv("OPENIMS_DNS_TXT_OVERRIDES_FILE", raising=False)
    with pytest.raises(dns_verify.DnsError, match="DNS server 127.0.0.1"):
        dns_verify.lookup_txt("example.com")


def test_override_file_answers_listed_names_only(dns: FakeDns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "txt.json"
    monkeypatch.setenv("OPENIMS_DNS_TXT_OVERRIDES_FILE", str(path))
    dns.records["real.example.com"] = ["from dns"]
    assert dns_verify.lookup_txt("real.example.com") == ["from dns"]  # no file yet: DNS answers
    path.write_text(json.dumps({"Offline.example.com.": ["from file"], "empty.example.com": []}))
    assert dns_verify.lookup_txt("offline.example.com") == ["from file"]
    assert dns_verify.lookup_txt("empty.example.com") == []
    assert dns_verify.lookup_txt("real.example.com") == ["from dns"]
    assert ("udp", "offline.example.com") not in dns.queries
    path.write_text("{not json")
    with pytest.raises(dns_verify.DnsError, match="OPENIMS_DNS_TXT_OVERRIDES_FILE"):
        dns_verify.lookup_txt("offline.example.com")
