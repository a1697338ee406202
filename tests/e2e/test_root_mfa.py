"""Root MFA from the command line: `openims account set-mfa` / `unset-mfa`, what the official SDK then reports
(GetAccountMFAInfo, the reports), and the events they leave."""

from __future__ import annotations

import base64
import json

import sqlalchemy as sa
from alibabacloud_ims20190815 import models as m

from openims.store.schema import accounts
from tests.root_mfa_support import set_mfa, unset_mfa
from tests.support import Account


def _root_mfa(acct: Account) -> bool:
    body = acct.ims().get_account_mfainfo().body
    # Every field the SDK documents, and nothing else.
    assert set(body.to_map()) == {"IsMFAEnable", "RequestId"} and body.request_id
    return bool(body.is_mfaenable)


def _stored(acct: Account) -> sa.Row:
    with acct.server.runtime.db.read() as conn:
        return conn.execute(sa.select(accounts).where(accounts.c.id == acct.account_id)).one()


def test_set_mfa_binds_only_with_two_right_codes_and_unset_mfa_removes_it(acct: Account) -> None:
    server = acct.server
    assert _root_mfa(acct) is False
    assert acct.call("GetCustomerMFA")["IsMFAEnable"] is False

    # Wrong codes: refused as BindMFADevice refuses them, nothing stored, the QR file gone.
    wrong = set_mfa(server, acct.alias, right_codes=False)
    assert wrong.returncode == 2 and "InvalidParameter.AuthenticationCode.Mismatch" in wrong.stderr
    assert wrong.qr_path is not None and not wrong.qr_path.exists()
    assert _root_mfa(acct) is False and _stored(acct).mfa_seed_sealed is None

    done = set_mfa(server, acct.alias)
    assert done.returncode == 0, done.stderr
    assert done.seed and done.uri and done.qr_path
    assert done.uri.startswith(f"otpauth://totp/OpenIMS:root%40{acct.alias}?") and f"secret={done.seed}" in done.uri
    assert acct.account_id in done.stdout and "console sign-in as root now asks for a code" in done.stdout
    # The QR code was a 0600 file in the data dir while the command waited, and is deleted when it ends.
    assert done.qr_path.parent == server.data_dir and done.qr_mode == 0o600 and not done.qr_path.exists()
    assert done.seed not in done.stderr

    assert _root_mfa(acct) is True
    customer = acct.call("GetCustomerMFA")
    assert customer["IsMFAEnable"] is True and (customer["MFADevices"], customer["MFADevicesInUse"]) == (0, 0)
    practice = acct.ims().get_account_security_practice_report().body.account_security_practice_info
    assert practice.account_security_practice_user_info.bind_mfa is True
    acct.ims().generate_credential_report()
    report = acct.ims().get_credential_report(m.GetCredentialReportRequest()).body.content
    header, root_line = base64.b64decode(report).decode().splitlines()[:2]
    assert dict(zip(header.split(","), root_line.split(",")))["mfa_active"] == "TRUE"

    # At rest the seed is sealed with the master key, bound to this account's row.
    row = _stored(acct)
    assert done.seed.encode() not in bytes(row.mfa_seed_sealed)
    assert server.runtime.master_key.open(row.mfa_seed_sealed, f"acs:ram::{acct.account_id}:root/mfa") == done.seed
    assert row.mfa_last_step == done.step and row.mfa_bound_ms

    # A second set-mfa is refused before any new key is shown.
    again = set_mfa(server, acct.account_id)
    assert again.returncode == 2 and "EntityAlreadyExists.Account.MFADevice" in again.stderr
    assert again.seed is None and "Base32" not in again.stdout

    removed = unset_mfa(server, acct.account_id)
    assert removed.returncode == 0 and acct.account_id in removed.stdout, removed.stderr
    assert _root_mfa(acct) is False and _stored(acct).mfa_seed_sealed is None
    none_left = unset_mfa(server, acct.alias)
    assert none_left.returncode == 2 and "EntityNotExist.Account.MFADevice" in none_left.stderr

    # Every attempt is an event of the account, as the trail commands record theirs; no key or code in any.
    sets = acct.events(EventName="SetAccountMFA")
    assert [e.get("errorCode") for e in sets] == [
        "EntityAlreadyExists.Account.MFADevice",
        None,
        "InvalidParameter.AuthenticationCode.Mismatch",
    ]
    unsets = acct.events(EventName="UnsetAccountMFA")
    assert [e.get("errorCode") for e in unsets] == ["EntityNotExist.Account.MFADevice", None]
    for event in sets + unsets:
        assert (event["eventType"], event["eventRW"], event["userAgent"], event["sourceIpAddress"]) == (
            "ApiCall",
            "Write",
            "openims-cli",
            "localhost",
        )
        assert event["userIdentity"]["type"] == "root-account" and event["userIdentity"]["userName"] == "root"
        assert event["serviceName"] == "Ims" and event["recipientAccountId"] == acct.account_id
    everything = json.dumps(acct.events())
    for secret in (wrong.seed, done.seed):
        assert secret and secret not in everything


def test_set_mfa_refuses_an_unknown_account(acct: Account) -> None:
    out = set_mfa(acct.server, "no-such-alias")
    assert out.returncode == 2 and "no account 'no-such-alias'" in out.stderr and "Base32" not in out.stdout
    gone = unset_mfa(acct.server, "no-such-alias")
    assert gone.returncode == 2 and "no account 'no-such-alias'" in gone.stderr
