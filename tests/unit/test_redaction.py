"""Secrets never reach an event, whether declared by the action or only known by name."""

from __future__ import annotations

from openims.audit.event import REDACTED, redact, request_parameters


def test_request_parameters_drop_protocol_fields_and_redact() -> None:
    raw = {
        "Action": "X",
        "Signature": "s",
        "AccessKeyId": "LTAI",
        "Password": "hunter2",
        "Tag.1.Value": "v",
        "password": "lower",
        "Custom.1.Secret": "deep",
        "DisplayName": "d" * 3000,
    }
    out = request_parameters(raw, frozenset({"Tag"}))
    assert "Signature" not in out and "Action" not in out and "AccessKeyId" not in out
    assert out["Password"] == REDACTED and out["Custom.1.Secret"] == REDACTED and out["Tag.1.Value"] == "v"
    assert out["password"] == REDACTED
    assert len(out["DisplayName"]) < 2200 and out["DisplayName"].endswith("more characters)")


def test_response_redaction_is_recursive() -> None:
    body = {"AccessKey": {"AccessKeyId": "LTAI1", "AccessKeySecret": "sekrit"}, "List": [{"AppSecretValue": "v"}]}
    out = redact(body, frozenset())
    assert out == {
        "AccessKey": {"AccessKeyId": "LTAI1", "AccessKeySecret": REDACTED},
        "List": [{"AppSecretValue": REDACTED}],
    }
    assert redact({"Token": "t"}, frozenset({"Token"})) == {"Token": REDACTED}
