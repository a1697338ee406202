"""The credential report and the account security practice report, from real state, via the official SDK."""

from __future__ import annotations

import base64
import csv
import io
import json

import pytest
from alibabacloud_ims20190815 import models as m
from sqlalchemy import update
from Tea.exceptions import TeaException

from openims import clock
from openims.actions import reports
from openims.credentials import totp
from openims.store.schema import access_keys
from tests.support import Account, Server

DAY_MS = 24 * 3600 * 1000
PASSWORD = "Tr1cky-Horse-Battery"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def new_user(
    acct: Account, name: str, keys: int = 0, password: bool = False, mfa: bool = False
) -> tuple[str, list[tuple[str, str]]]:
    ims = acct.ims()
    upn = acct.upn(name)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    if password:
        ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD))
    if mfa:
        device = ims.create_virtual_mfadevice(
            m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name=name)
        ).body.virtual_mfadevice
        step = totp.current_step()
        seed = device.base_32string_seed
        ims.bind_mfadevice(
            m.BindMFADeviceRequest(
                user_principal_name=upn,
                serial_number=device.serial_number,
                authentication_code_1=totp.code_at(seed, step - 1),
                authentication_code_2=totp.code_at(seed, step),
            )
        )
    made = []
    for _ in range(keys):
        key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
        made.append((key.access_key_id, key.access_key_secret))
    return upn, made


def lines(content: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(base64.b64decode(content).decode())))


def test_credential_report_content(acct: Account) -> None:
    ims = acct.ims()
    err = error_of(lambda: ims.get_credential_report(m.GetCredentialReportRequest()))
    assert err.code == "EntityNotExist.CredentialReport" and err.statusCode == 404

    ims.set_password_policy(m.SetPasswordPolicyRequest(max_password_age=90))
    alice, [(a1, s1), (a2, _)] = new_user(acct, "alice", keys=2, password=True, mfa=True)
    bob, _ = new_user(acct, "bob")
    carol, _ = new_user(acct, "carol", password=True)
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=carol, status="Inactive"))
    gone, _ = new_user(acct, "gone", keys=1)
    ims.delete_user(m.DeleteUserRequest(user_principal_name=gone))
    acct.ims(a1, s1).get_user(m.GetUserRequest())
    ims.update_access_key(m.UpdateAccessKeyRequest(user_principal_name=alice, user_access_key_id=a2, status="Inactive"))

    generated = ims.generate_credential_report().body
    assert generated.state == "COMPLETED"
    body = ims.get_credential_report(m.GetCredentialReportRequest()).body
    assert body.is_truncated == "false" and not body.next_token
    generated_ms = clock.parse_iso(body.generated_time)
    text = base64.b64decode(body.content).decode()
    assert text.splitlines()[0] == ",".join(reports.COLUMNS)
    rows = {r["user"]: r for r in lines(body.content)}
    assert list(rows) == ["<root>", alice, bob, carol]

    root = rows["<root>"]
    assert (root["password_exist"], root["mfa_active"], root["access_key_1_exist"], root["access_key_1_active"]) == (
        "FALSE",
        "FALSE",
        "TRUE",
        "TRUE",
    )
    assert root["access_key_1_last_used_service"] == "Ims" and root["access_key_1_last_used"] != "N/A"
    assert (root["access_key_2_exist"], root["additional_access_key"]) == ("FALSE", "FALSE")

    a = rows[alice]
    assert (a["password_exist"], a["password_active"], a["mfa_active"]) == ("TRUE", "TRUE", "TRUE")
    changed = clock.parse_iso(a["password_last_changed"])
    assert changed <= generated_ms and clock.parse_iso(a["password_next_rotation"]) == changed + 90 * DAY_MS
    assert a["user_last_logon"] == "N/A" and clock.parse_iso(a["user_creation_time"]) <= changed
    assert (a["access_key_1_exist"], a["access_key_1_active"], a["access_key_1_last_used_service"]) == (
        "TRUE",
        "TRUE",
        "Ims",
    )
    assert clock.parse_iso(a["access_key_1_last_used"]) <= generated_ms + 1000
    assert (a["access_key_2_exist"], a["access_key_2_active"], a["access_key_2_last_used"]) == ("TRUE", "FALSE", "N/A")
    assert a["access_key_1_last_rotated"] <= a["access_key_2_last_rotated"]

    b = rows[bob]
    assert (
        b["password_exist"],
        b["password_active"],
        b["password_last_changed"],
        b["password_next_rotation"],
        b["mfa_active"],
    ) == ("FALSE", "N/A", "N/A", "N/A", "FALSE")
    assert (b["access_key_1_exist"], b["access_key_1_active"], b["access_key_1_last_used"]) == ("FALSE", "N/A", "N/A")
    assert (rows[carol]["password_exist"], rows[carol]["password_active"]) == ("TRUE", "FALSE")

    assert PASSWORD not in text and s1 not in text and acct.secret not in text
    event = acct.event_for(generated.request_id)
    assert (event["eventName"], event["eventRW"], event["responseElements"]["State"]) == (
        "GenerateCredentialReport",
        "Write",
        "COMPLETED",
    )
    assert acct.event_for(body.request_id)["eventName"] == "GetCredentialReport"
    dump = json.dumps(acct.events())
    assert PASSWORD not in dump and s1 not in dump and acct.secret not in dump


def test_credential_report_is_a_paged_snapshot(acct: Account) -> None:
    ims = acct.ims()
    for i in range(4):
        new_user(acct, f"user{i}")
    ims.generate_credential_report()
    full = lines(ims.get_credential_report(m.GetCredentialReportRequest()).body.content)
    assert len(full) == 5
    new_user(acct, "late")  # after generation: not in this report
    pages, token = [], None
    while True:
        body = ims.get_credential_report(m.GetCredentialReportRequest(max_items="2", next_token=token)).body
        pages.append(lines(body.content))  # every page carries the header
        if body.is_truncated != "true":
            break
        token = body.next_token
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [r for p in pages for r in p] == full

    ims.generate_credential_report()
    assert len(lines(ims.get_credential_report(m.GetCredentialReportRequest()).body.content)) == 6
    cases = [
        (m.GetCredentialReportRequest(next_token=token), "InvalidParameter.NextToken"),  # of the replaced report
        (m.GetCredentialReportRequest(next_token="garbage"), "InvalidParameter.NextToken"),
        (m.GetCredentialReportRequest(max_items="0"), "InvalidParameter.MaxItems"),
        (m.GetCredentialReportRequest(max_items="3502"), "InvalidParameter.MaxItems"),
        (m.GetCredentialReportRequest(max_items="many"), "InvalidParameter.MaxItems"),
    ]
    for request, code in cases:
        err = error_of(lambda: ims.get_credential_report(request))
        assert (err.code, err.statusCode) == (code, 400)


def test_security_practice_report_of_a_new_account(acct: Account) -> None:
    body = acct.ims().get_account_security_practice_report().body
    info = body.account_security_practice_info.account_security_practice_user_info
    assert (info.root_with_access_key, info.bind_mfa, info.sub_user, info.sub_user_bind_mfa) == (1, False, 0, 0)
    assert (
        info.old_ak_num,
        info.unused_ak_num,
        info.sub_user_with_old_access_key,
        info.sub_user_with_unused_access_key,
    ) == (0, 0, 0, 0)
    assert info.sub_user_pwd_level == "low"
    # 100 - 25 (root has an AccessKey) - 15 (root without MFA) - 10 (weak password policy)
    assert body.account_security_practice_info.score == 50
    event = acct.event_for(body.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"]) == (
        "GetAccountSecurityPracticeReport",
        "Read",
        "",
    )


def test_security_practice_report_follows_the_state(acct: Account, server: Server) -> None:
    ims = acct.ims()
    ims.set_password_policy(
        m.SetPasswordPolicyRequest(
            minimum_password_length=12,
            require_lowercase_characters=True,
            require_uppercase_characters=True,
            require_numbers=True,
        )
    )
    spare = ims.create_access_key(m.CreateAccessKeyRequest()).body.access_key.access_key_id
    idle, [(idle_key, _)] = new_user(acct, "idle", keys=1, mfa=True)
    busy, [(busy_key, busy_secret)] = new_user(acct, "busy", keys=1)
    new_user(acct, "recycled", keys=1)
    ims.delete_user(m.DeleteUserRequest(user_principal_name=acct.upn("recycled")))
    acct.ims(busy_key, busy_secret).get_user(m.GetUserRequest())
    # Time travel for three keys: created 100 days ago (the busy one was used just now, the others never).
    with server.runtime.db.transaction() as conn:
        conn.execute(
            update(access_keys)
            .where(access_keys.c.id.in_([spare, idle_key, busy_key]))
            .values(created_ms=clock.now_ms() - 100 * DAY_MS)
        )

    body = ims.get_account_security_practice_report().body.account_security_practice_info
    info = body.account_security_practice_user_info
    assert (info.root_with_access_key, info.old_ak_num, info.unused_ak_num) == (2, 1, 1)
    assert (info.sub_user, info.sub_user_bind_mfa, info.sub_user_pwd_level) == (2, 1, "high")
    assert (info.sub_user_with_old_access_key, info.sub_user_with_unused_access_key) == (2, 1)
    # 100 - 25 - 15 - 20*(1/2) - 15*(2+1)/3 - 15*(1+1)/3 - 0
    assert body.score == 25

    # Deleting the idle key and rotating the busy one improves the picture.
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=idle, user_access_key_id=idle_key))
    ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=busy))
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=busy, user_access_key_id=busy_key))
    report = ims.get_account_security_practice_report().body.account_security_practice_info
    info = report.account_security_practice_user_info
    assert (info.sub_user_with_old_access_key, info.sub_user_with_unused_access_key) == (0, 0)


def test_ram_user_needs_permission(acct: Account) -> None:
    _upn, [key] = new_user(acct, "plain", keys=1)
    as_user = acct.ims(*key)
    for call in (
        as_user.generate_credential_report,
        as_user.get_account_security_practice_report,
        lambda: as_user.get_credential_report(m.GetCredentialReportRequest()),
    ):
        err = error_of(call)
        assert err.code == "NoPermission" and err.statusCode == 403
