"""Virtual MFA devices through the official IMS SDK: the seed and QR code shown once, binding proven by two
consecutive TOTP codes (computed here with pyotp from the returned seed), replay refusal, self-service,
and neither seeds, codes nor passwords in any event or anywhere in the raw database."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pyotp
import pytest
import sqlalchemy as sa
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from openims.credentials import totp
from tests.support import Account, Server

PASSWORD = "Console-Pass-2468"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def new_user(acct: Account, name: str) -> str:
    upn = acct.upn(name)
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    return upn


def codes(seed: str) -> tuple[str, str]:
    """Two consecutive codes, as an authenticator app shows them: the previous step's and the current one's."""
    otp, now = pyotp.TOTP(seed), time.time()
    return otp.at(now - 30), otp.at(now)


def bind_request(upn: str, serial: str, pair: tuple[str, str]) -> m.BindMFADeviceRequest:
    return m.BindMFADeviceRequest(
        user_principal_name=upn, serial_number=serial, authentication_code_1=pair[0], authentication_code_2=pair[1]
    )


def assert_never_recorded(acct: Account, *secrets: str) -> None:
    everything = json.dumps(acct.events(), ensure_ascii=False)
    for secret in secrets:
        assert secret not in everything


def test_device_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    upn = new_user(acct, "alice")
    created = ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="alice-phone")).body
    device = created.virtual_mfadevice
    serial, seed = device.serial_number, device.base_32string_seed
    assert serial == f"acs:ram::{acct.account_id}:mfa/alice-phone"
    assert len(seed) == 32 and base64.b32decode(seed)
    png = base64.b64decode(device.qrcode_png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # the QR code encodes the otpauth:// URI of this seed
    uri = f"otpauth://totp/OpenIMS:{quote('alice-phone@' + acct.alias)}?secret={seed}&issuer=OpenIMS"
    assert pyotp.parse_uri(uri).secret == seed
    assert device.qrcode_png == totp.qr_png_base64(uri)

    listed = ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest()).body
    assert [(d.serial_number, d.user) for d in listed.virtual_mfadevices.virtual_mfadevice] == [(serial, None)]
    pair = codes(seed)
    bound = ims.bind_mfadevice(bind_request(upn, serial, pair)).body
    item = ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest()).body.virtual_mfadevices.virtual_mfadevice[0]
    assert (
        item.user.user_principal_name == upn and item.user.display_name == "alice" and item.activate_date.endswith("Z")
    )
    info = ims.get_user_mfainfo(m.GetUserMFAInfoRequest(user_principal_name=upn)).body
    assert info.is_mfaenable is True and (info.mfadevice.serial_number, info.mfadevice.type) == (serial, "VMFA")
    summary = ims.get_account_summary().body.summary_map
    assert (summary.mfadevices, summary.mfadevices_in_use, summary.virtual_mfadevices_quota) == (1, 1, 1000)

    unbound = ims.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=upn)).body
    assert unbound.mfadevice.serial_number == serial
    assert ims.get_user_mfainfo(m.GetUserMFAInfoRequest(user_principal_name=upn)).body.is_mfaenable is False
    assert ims.get_account_summary().body.summary_map.mfadevices_in_use == 0
    deleted = ims.delete_virtual_mfadevice(m.DeleteVirtualMFADeviceRequest(serial_number=serial)).body
    assert ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest()).body.virtual_mfadevices.virtual_mfadevice == []

    event = acct.event_for(created.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "CreateVirtualMFADevice",
        "Write",
        "ACS::RAM::VirtualMFADevice",
        serial,
    )
    assert event["responseElements"]["VirtualMFADevice"] == {
        "SerialNumber": serial,
        "Base32StringSeed": "******",
        "QRCodePNG": "******",
    }
    event = acct.event_for(bound.request_id)
    assert (event["eventName"], event["resourceType"], event["resourceName"]) == (
        "BindMFADevice",
        "ACS::RAM::User;ACS::RAM::VirtualMFADevice",
        f"{upn};{serial}",
    )
    assert event["referencedResources"] == {"ACS::RAM::User": [upn], "ACS::RAM::VirtualMFADevice": [serial]}
    assert (
        event["requestParameters"]["AuthenticationCode1"] == "******"
        and event["requestParameters"]["AuthenticationCode2"] == "******"
    )
    assert acct.event_for(unbound.request_id)["responseElements"]["MFADevice"]["SerialNumber"] == serial
    event = acct.event_for(deleted.request_id)
    assert (event["eventName"], event["resourceType"], event["resourceName"]) == (
        "DeleteVirtualMFADevice",
        "ACS::RAM::VirtualMFADevice",
        serial,
    )
    assert [e["eventRW"] for e in acct.events(EventName="ListVirtualMFADevices")] == ["Read", "Read", "Read"]
    assert acct.events(EventName="GetUserMFAInfo")[0]["resourceName"] == upn
    assert_never_recorded(acct, seed, device.qrcode_png[:64], *pair)


def test_wrong_and_replayed_codes_are_refused(acct: Account) -> None:
    ims = acct.ims()
    upn = new_user(acct, "bob")
    device = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="bob-token")
    ).body.virtual_mfadevice
    serial, seed = device.serial_number, device.base_32string_seed
    pair = codes(seed)
    for wrong in ((pair[1], pair[0]), ("000000", "000000"), (pair[0], "12345"), ("abcdef", pair[1])):
        if wrong == pair:
            continue
        err = error_of(lambda: ims.bind_mfadevice(bind_request(upn, serial, wrong)))
        assert (err.code, err.statusCode) == ("InvalidParameter.AuthenticationCode.Mismatch", 400)
    # codes of another device's seed are wrong for this one
    other = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="bob-spare")
    ).body.virtual_mfadevice
    err = error_of(lambda: ims.bind_mfadevice(bind_request(upn, serial, codes(other.base_32string_seed))))
    assert err.code == "InvalidParameter.AuthenticationCode.Mismatch"
    ims.bind_mfadevice(bind_request(upn, serial, pair))
    ims.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=upn))
    # the same two codes, captured and replayed, no longer bind the device
    err = error_of(lambda: ims.bind_mfadevice(bind_request(upn, serial, pair)))
    assert (err.code, err.statusCode) == ("InvalidParameter.AuthenticationCode.Reused", 400)
    assert ims.get_user_mfainfo(m.GetUserMFAInfoRequest(user_principal_name=upn)).body.is_mfaenable is False
    failed = acct.events(EventName="BindMFADevice")
    assert [e.get("errorCode") for e in failed][:2] == ["InvalidParameter.AuthenticationCode.Reused", None]
    assert all(e["requestParameters"]["AuthenticationCode1"] == "******" for e in failed)
    assert_never_recorded(acct, seed, other.base_32string_seed, *pair)


def test_device_errors(acct: Account) -> None:
    ims = acct.ims()
    alice, bob = new_user(acct, "alice"), new_user(acct, "bob")
    first = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="one")
    ).body.virtual_mfadevice
    second = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="two")
    ).body.virtual_mfadevice
    ims.bind_mfadevice(bind_request(alice, first.serial_number, codes(first.base_32string_seed)))
    missing_serial = f"acs:ram::{acct.account_id}:mfa/none"
    cases = [
        (
            lambda: ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="one")),
            "EntityAlreadyExists.VirtualMFADevice",
            409,
        ),
        (
            lambda: ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="bad name")),
            "InvalidParameter.VirtualMFADeviceName.InvalidChars",
            400,
        ),
        (
            lambda: ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="x" * 65)),
            "InvalidParameter.VirtualMFADeviceName.Length",
            400,
        ),
        (lambda: ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest()), "MissingParameter", 400),
        (
            lambda: ims.bind_mfadevice(bind_request(alice, second.serial_number, codes(second.base_32string_seed))),
            "EntityAlreadyExists.User.MFADevice",
            409,
        ),
        (
            lambda: ims.bind_mfadevice(bind_request(bob, first.serial_number, codes(first.base_32string_seed))),
            "EntityAlreadyExists.VirtualMFADevice.Bound",
            409,
        ),
        (
            lambda: ims.bind_mfadevice(bind_request(bob, missing_serial, ("123456", "654321"))),
            "EntityNotExist.VirtualMFADevice",
            404,
        ),
        (
            lambda: ims.bind_mfadevice(bind_request(acct.upn("ghost"), second.serial_number, ("123456", "654321"))),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: ims.bind_mfadevice(
                m.BindMFADeviceRequest(user_principal_name=bob, serial_number=second.serial_number)
            ),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=bob)),
            "EntityNotExist.User.MFADevice",
            404,
        ),
        (
            lambda: ims.disable_virtual_mfa(m.DisableVirtualMFARequest(user_principal_name=bob)),
            "EntityNotExist.User.MFADevice",
            404,
        ),
        (
            lambda: ims.delete_virtual_mfadevice(m.DeleteVirtualMFADeviceRequest(serial_number=first.serial_number)),
            "DeleteConflict.VirtualMFADevice.User",
            409,
        ),
        (
            lambda: ims.delete_virtual_mfadevice(m.DeleteVirtualMFADeviceRequest(serial_number=missing_serial)),
            "EntityNotExist.VirtualMFADevice",
            404,
        ),
        (lambda: ims.get_user_mfainfo(m.GetUserMFAInfoRequest()), "MissingParameter", 400),
        (
            lambda: ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest(max_items=101)),
            "InvalidParameter.MaxItems",
            400,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code)
    # DisableVirtualMFA unbinds and deletes in one step
    disabled = ims.disable_virtual_mfa(m.DisableVirtualMFARequest(user_principal_name=alice)).body
    event = acct.event_for(disabled.request_id)
    assert (event["eventName"], event["resourceName"], event["referencedResources"]["ACS::RAM::VirtualMFADevice"]) == (
        "DisableVirtualMFA",
        f"{alice};{first.serial_number}",
        [first.serial_number],
    )
    serials = [
        d.serial_number
        for d in ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest()).body.virtual_mfadevices.virtual_mfadevice
    ]
    assert serials == [second.serial_number]


def test_listing_pages(acct: Account) -> None:
    ims = acct.ims()
    names = [f"dev-{i}" for i in range(5)]
    for name in names:
        ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name=name))
    seen, marker = [], None
    while True:
        body = ims.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest(max_items=2, marker=marker)).body
        seen += [d.serial_number for d in body.virtual_mfadevices.virtual_mfadevice]
        if not body.is_truncated:
            break
        marker = body.marker
    assert seen == sorted(f"acs:ram::{acct.account_id}:mfa/{n}" for n in names)
    assert ims.get_account_summary().body.summary_map.mfadevices == 5


def test_ram_user_manages_its_own_device(acct: Account) -> None:
    ims = acct.ims()
    upn, other = new_user(acct, "carol"), new_user(acct, "dave")
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    mine = acct.ims(key.access_key_id, key.access_key_secret)
    device = mine.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="carol-phone")
    ).body.virtual_mfadevice
    mine.bind_mfadevice(bind_request(upn, device.serial_number, codes(device.base_32string_seed)))
    info = mine.get_user_mfainfo(m.GetUserMFAInfoRequest()).body
    assert info.is_mfaenable is True and info.mfadevice.serial_number == device.serial_number
    assert mine.get_user_mfainfo(m.GetUserMFAInfoRequest(user_principal_name=upn)).body.is_mfaenable is True
    checked = acct.call("CheckUserMFA", {}, key_id=key.access_key_id, secret=key.access_key_secret)
    assert (
        checked["UserPrincipalName"] == upn
        and checked["IsMFAEnable"] is True
        and checked["MFARequiredForLogin"] is True
    )
    spare = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="spare")
    ).body.virtual_mfadevice
    for call in (
        lambda: mine.bind_mfadevice(bind_request(other, spare.serial_number, codes(spare.base_32string_seed))),
        lambda: mine.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=other)),
        lambda: mine.get_user_mfainfo(m.GetUserMFAInfoRequest(user_principal_name=other)),
        lambda: mine.delete_virtual_mfadevice(m.DeleteVirtualMFADeviceRequest(serial_number=spare.serial_number)),
        lambda: mine.disable_virtual_mfa(m.DisableVirtualMFARequest(user_principal_name=upn)),
        lambda: mine.list_virtual_mfadevices(m.ListVirtualMFADevicesRequest()),
    ):
        err = error_of(call)
        assert (err.code, err.statusCode) == ("NoPermission", 403)
    unbound = mine.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=upn)).body
    assert unbound.mfadevice.serial_number == device.serial_number
    event = acct.event_for(unbound.request_id)
    assert event["userIdentity"]["type"] == "ram-user" and event["userIdentity"]["userName"] == upn
    denied = acct.events(ErrorCode="NoPermission")
    assert {e["eventName"] for e in denied} == {
        "BindMFADevice",
        "UnbindMFADevice",
        "GetUserMFAInfo",
        "DeleteVirtualMFADevice",
        "DisableVirtualMFA",
        "ListVirtualMFADevices",
    }
    assert_never_recorded(acct, device.base_32string_seed, spare.base_32string_seed)


def test_user_account_and_customer_mfa_views(acct: Account) -> None:
    ims = acct.ims()
    upn = new_user(acct, "erin")
    ims.create_login_profile(
        m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD, mfabind_required=True)
    )
    checked = acct.call("CheckUserMFA", {"UserPrincipalName": upn})
    assert checked == {
        **checked,
        "UserPrincipalName": upn,
        "IsMFAEnable": False,
        "MFABindRequired": True,
        "MFARequiredForLogin": True,
    }
    assert "MFADevice" not in checked
    plain = new_user(acct, "frank")
    assert acct.call("CheckUserMFA", {"UserPrincipalName": plain})["MFARequiredForLogin"] is False
    ims.set_security_preference(m.SetSecurityPreferenceRequest(mfaoperation_for_login="mandatory"))
    assert acct.call("CheckUserMFA", {"UserPrincipalName": plain})["MFABindRequired"] is True
    err = error_of(lambda: acct.call("CheckUserMFA", {"UserPrincipalName": acct.upn("ghost")}))
    assert (err.code, err.statusCode) == ("EntityNotExist.User", 404)
    assert ims.get_account_mfainfo().body.is_mfaenable is False
    customer = acct.call("GetCustomerMFA")
    assert customer["IsMFAEnable"] is False and customer["MFAOperationForLogin"] == "mandatory"
    assert (customer["MFADevices"], customer["MFADevicesInUse"]) == (0, 0)
    for name, rw in (("CheckUserMFA", "Read"), ("GetAccountMFAInfo", "Read"), ("GetCustomerMFA", "Read")):
        assert acct.events(EventName=name)[0]["eventRW"] == rw


def _raw_database_text(server: Server) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every text and binary column of PostgreSQL."""
    if server.backend == "sqlite":
        db = server.data_dir / "openims.db"
        return b"".join(p.read_bytes() for p in (db, db.with_name("openims.db-wal")) if p.exists())
    engine = server.runtime.db.engine
    chunks: list[bytes] = []
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')"
            )
        ).all()
        for table, column in columns:
            for (value,) in conn.execute(sa.text(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')):
                chunks.append(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
    return b"\n".join(chunks)


def test_no_plaintext_password_or_seed_at_rest(acct: Account) -> None:
    ims = acct.ims()
    upn = new_user(acct, "grace")
    passwords = ["Rest-Check-Pass-1", "Rest-Check-Pass-2"]
    ims.set_password_policy(m.SetPasswordPolicyRequest(password_reuse_prevention=3))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=passwords[0]))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    acct.ims(key.access_key_id, key.access_key_secret).change_password(
        m.ChangePasswordRequest(old_password=passwords[0], new_password=passwords[1])
    )
    error_of(
        lambda: ims.create_login_profile(
            m.CreateLoginProfileRequest(user_principal_name=upn, password="Rest-Check-Weak")
        )
    )
    device = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="grace-phone")
    ).body.virtual_mfadevice
    ims.bind_mfadevice(bind_request(upn, device.serial_number, codes(device.base_32string_seed)))
    raw = _raw_database_text(acct.server)
    assert upn.encode() in raw  # the dump does see the data
    for secret in (*passwords, "Rest-Check-Weak", device.base_32string_seed, key.access_key_secret):
        assert secret.encode() not in raw, secret
        assert base64.b64encode(secret.encode()) not in raw
    assert base64.b32decode(device.base_32string_seed) not in raw
