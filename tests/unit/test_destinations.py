"""Which account may use which configured bucket or SLS project (`accounts`, the `"*"` entry, SlsProjectArn's
account), and the targets the deliverer builds from that: per-account directories, refusals as target problems."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openims.config import Settings
from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.destinations import Destinations
from openims.delivery.sinks.directory import DirectorySink
from openims.delivery.targets import TargetFactory

A, B = "1000000000000001", "1000000000000002"
SECRET = "operator-secret-never-shown-0123"


def entry(*accounts: str, endpoint: str = "http://127.0.0.1:9") -> dict[str, Any]:
    found: dict[str, Any] = {
        "endpoint_url": endpoint,
        "access_key_id": "LTAI5tOperatorKey0000000",
        "secret_access_key": SECRET,
    }
    return {**found, "accounts": list(accounts)} if accounts else found


def write(data_dir: Path, name: str, value: Any) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / name).write_text(json.dumps(value))


def test_allow_list_named_entry_and_catch_all(tmp_path: Path) -> None:
    write(tmp_path, "oss-buckets.json", {"for-a": entry(A), "for-all": entry(), "*": entry(B)})
    dest = Destinations(tmp_path)
    assert dest.bucket("for-a", A).entry is not None and dest.bucket("for-a", A).denied is None
    refused = dest.bucket("for-a", B)
    assert refused.entry is None and refused.denied and "'for-a'" in refused.denied and B in refused.denied
    assert A not in refused.denied and SECRET not in refused.denied and "127.0.0.1" not in refused.denied
    assert dest.bucket("for-all", A).denied is None and dest.bucket("for-all", B).denied is None  # no list: anyone
    assert dest.bucket("unlisted", B).entry is not None  # "*" applies, and allows B
    assert dest.bucket("unlisted", A).denied  # ... and only B


def test_an_empty_list_allows_nobody_and_a_bad_list_is_a_settings_error(tmp_path: Path) -> None:
    write(tmp_path, "oss-buckets.json", {"nobody": {**entry(), "accounts": []}})
    assert Destinations(tmp_path).bucket("nobody", A).denied
    for bad in ([A[:-1]], A, [int(A)]):
        write(tmp_path, "oss-buckets.json", {"b": {**entry(), "accounts": bad}})
        found = Destinations(tmp_path).bucket("b", A)
        assert found.entry is None and found.denied is None
        assert found.error and "16-digit account IDs" in found.error and SECRET not in found.error


def test_inline_setting_carries_the_allow_list_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENIMS_OSS_BUCKETS", json.dumps({"inline": entry(A)}))
    assert Destinations(tmp_path).bucket("inline", B).denied and not Destinations(tmp_path).bucket("inline", A).denied


def test_sls_project_arn_must_name_the_trails_account(tmp_path: Path) -> None:
    write(
        tmp_path, "sls-projects.json", {"proj": {"endpoint": "127.0.0.1:9", "accounts": [A]}, "open": {"endpoint": "x"}}
    )
    dest = Destinations(tmp_path)
    arn = "acs:log:cn-hangzhou:{}:project/{}".format
    assert dest.project(arn(A, "proj"), A).entry == {"endpoint": "127.0.0.1:9", "accounts": [A]}
    assert "names account " + B in (dest.project(arn(B, "open"), A).denied or "")
    assert dest.project(arn(B, "proj"), B).denied  # B's own ARN, but the project is A's only
    assert dest.project(arn(B, "open"), B).denied is None
    assert dest.project("acs:log:cn-hangzhou:1:logstore/x", A).error


def trail_row(account_id: str, **values: Any) -> SimpleNamespace:
    row = {
        "id": "t" + account_id,
        "name": "tenant-trail",
        "account_id": account_id,
        "updated_ms": 1,
        "oss_bucket_name": "",
        "oss_key_prefix": "",
        "sls_project_arn": "",
        "syslog_address": "",
        "syslog_tls": False,
        "webhook_url": "",
        "webhook_secret_sealed": None,
    }
    return SimpleNamespace(**{**row, **values})


def test_targets_use_a_directory_per_account_and_refuse_at_delivery(tmp_path: Path) -> None:
    factory = TargetFactory(Settings(data_dir=tmp_path, database_url="sqlite://"), master_key=None)  # type: ignore[arg-type]
    for account_id in (A, B):
        [target] = factory.targets(trail_row(account_id, oss_bucket_name="same-name"))
        assert isinstance(target.sink, DirectorySink)
        assert target.sink.root == tmp_path / "buckets" / account_id and target.sink.bucket == "same-name"

    write(tmp_path, "oss-buckets.json", {"same-name": {"accounts": [A]}})  # the rule holds for directories too
    batch = Batch(trail_name="tenant-trail", account_id=B, region="cn-hangzhou", batch_id="b-1-1", events=[{}])
    [target] = factory.targets(trail_row(B, oss_bucket_name="same-name"))  # settings changed: rebuilt
    assert target.sink is None
    with pytest.raises(DeliveryError, match=f"'same-name' is not available to account {B}"):
        target.deliver(batch)
    [sls] = factory.targets(trail_row(B, id="sls-trail", sls_project_arn=f"acs:log:cn-hangzhou:{A}:project/proj"))
    assert sls.sink is None and f"names account {A}, not the trail's account {B}" in (sls.problem or "")
