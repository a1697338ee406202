"""Virtual MFA devices: create (the seed is shown once), bind with two consecutive TOTP codes, unbind,
delete, list, and each user's and the account's MFA status.

Seeds are sealed at rest with the master key (context: the serial number). A code is accepted only for a
time step later than the device's last accepted one, so no code works twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from openims import accounts, clock, quotas
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, Created, action
from openims.actions.security_preference import load_preferences
from openims.actions.users import UPN, UPN_OPTIONAL, USER, find_user
from openims.credentials import totp
from openims.crypto import MasterKey
from openims.errors import ApiError, already_exists, not_found
from openims.params import Str
from openims.store.schema import accounts as accounts_table
from openims.store.schema import users
from openims.store.tables.credentials import login_profiles, mfa_devices

MFA_DEVICE = "ACS::RAM::VirtualMFADevice"
ISSUER = "OpenIMS"
DEVICE_TYPE = "VMFA"
SERIAL = Str("SerialNumber", required=True, max_len=128)
CODES = (
    Str("AuthenticationCode1", required=True, max_len=16, secret=True),
    Str("AuthenticationCode2", required=True, max_len=16, secret=True),
)


def serial_number(account_id: str, name: str) -> str:
    return f"acs:ram::{account_id}:mfa/{name}"


def bound_device(conn: Connection, user_id: str) -> Row[Any] | None:
    return conn.execute(select(mfa_devices).where(mfa_devices.c.user_id == user_id)).first()


def check_code(conn: Connection, master_key: MasterKey, device: Row[Any], code: str) -> totp.Verdict:
    """Verify a TOTP code of a bound device; an accepted code's step is stored so it is never accepted again."""
    seed = master_key.open(device.seed_sealed, device.serial_number)
    verdict, step = totp.verify(seed, code, device.last_step)
    if verdict is totp.Verdict.ACCEPTED:
        conn.execute(
            update(mfa_devices).where(mfa_devices.c.serial_number == device.serial_number).values(last_step=step)
        )
    return verdict


def binding_step(seed: str, code1: str, code2: str, last_step: int | None) -> int:
    """The step of the second of two consecutive current codes proving a seed (store it as the last step);
    raises the binding errors otherwise. Shared by BindMFADevice and the root's `openims account set-mfa`."""
    verdict, step = totp.verify_pair(seed, code1, code2, last_step)
    if verdict is totp.Verdict.REUSED:
        raise ApiError(
            "InvalidParameter.AuthenticationCode.Reused",
            "The authentication codes were used before: wait for the device to show new codes.",
        )
    if verdict is not totp.Verdict.ACCEPTED or step is None:
        raise ApiError(
            "InvalidParameter.AuthenticationCode.Mismatch",
            "AuthenticationCode1 and AuthenticationCode2 must be two consecutive current codes of the MFA device.",
        )
    return step


def _find_device(ctx: CallContext, serial: str) -> Row[Any]:
    row = ctx.conn.execute(
        select(mfa_devices).where(mfa_devices.c.account_id == ctx.account_id, mfa_devices.c.serial_number == serial)
    ).first()
    if row is None:
        raise not_found("VirtualMFADevice", serial)
    ctx.reference(MFA_DEVICE, serial)
    return row


def _device_of(ctx: CallContext, user: Row[Any]) -> Row[Any]:
    device = bound_device(ctx.conn, user.id)
    if device is None:
        raise ApiError("EntityNotExist.User.MFADevice", f"The user has no MFA device bound: {user.upn}.")
    ctx.reference(MFA_DEVICE, device.serial_number)
    return device


@action(
    "CreateVirtualMFADevice",
    rw=WRITE,
    resource=(MFA_DEVICE, None),
    secrets=("Base32StringSeed", "QRCodePNG"),
    self_service="AllowUserToManageMFADevices",
    arn="mfa/{VirtualMFADeviceName}",
    params=(
        Str(
            "VirtualMFADeviceName",
            required=True,
            min_len=1,
            max_len=64,
            pattern=r"[A-Za-z0-9-]+",
            pattern_doc="can contain letters, digits and hyphens (-)",
        ),
    ),
    resources=((MFA_DEVICE, Created("VirtualMFADevice.SerialNumber")),),
    sensitive=True,
)
def create_virtual_mfa_device(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a virtual MFA device. Its Base32 seed and the QR code of its otpauth:// URI are returned only here."""
    name = p["VirtualMFADeviceName"]
    count = ctx.conn.execute(
        select(func.count()).select_from(mfa_devices).where(mfa_devices.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= quotas.MFA_DEVICES:
        raise ApiError(
            "LimitExceeded.VirtualMFADevice", f"An account can have at most {quotas.MFA_DEVICES} virtual MFA devices."
        )
    serial = serial_number(ctx.account_id, name)
    if ctx.conn.execute(
        select(mfa_devices.c.serial_number).where(
            mfa_devices.c.account_id == ctx.account_id, func.lower(mfa_devices.c.name) == name.lower()
        )
    ).first():
        raise already_exists("VirtualMFADevice", serial)
    seed = totp.new_seed()
    ctx.conn.execute(
        insert(mfa_devices).values(
            serial_number=serial,
            account_id=ctx.account_id,
            name=name,
            seed_sealed=ctx.runtime.master_key.seal(seed, serial),
            created_ms=ctx.now_ms,
        )
    )
    ctx.reference(MFA_DEVICE, serial)
    uri = totp.provisioning_uri(seed, f"{name}@{accounts.alias_of(ctx.conn, ctx.account_id)}", ISSUER)
    return {
        "VirtualMFADevice": {"SerialNumber": serial, "Base32StringSeed": seed, "QRCodePNG": totp.qr_png_base64(uri)}
    }


@action(
    "BindMFADevice",
    rw=WRITE,
    resource=(USER, "UserPrincipalName"),
    self_service="AllowUserToManageMFADevices",
    arn="user/{UserPrincipalName}",
    params=(UPN, SERIAL, *CODES),
    resources=((MFA_DEVICE, "SerialNumber"),),
    sensitive=True,
)
def bind_mfa_device(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Bind a virtual MFA device to a RAM user, proven by two consecutive codes it generated."""
    user = find_user(ctx, p["UserPrincipalName"])
    device = _find_device(ctx, p["SerialNumber"])
    if device.user_id is not None:
        raise ApiError(
            "EntityAlreadyExists.VirtualMFADevice.Bound",
            f"The MFA device is already bound to a user: {device.serial_number}.",
        )
    if bound_device(ctx.conn, user.id) is not None:
        raise already_exists("User.MFADevice", user.upn)
    seed = ctx.runtime.master_key.open(device.seed_sealed, device.serial_number)
    step = binding_step(seed, p["AuthenticationCode1"], p["AuthenticationCode2"], device.last_step)
    ctx.conn.execute(
        update(mfa_devices)
        .where(mfa_devices.c.serial_number == device.serial_number)
        .values(user_id=user.id, bound_ms=ctx.now_ms, last_step=step)
    )
    return {}


@action(
    "UnbindMFADevice",
    rw=WRITE,
    resource=(USER, "UserPrincipalName"),
    self_service="AllowUserToManageMFADevices",
    arn="user/{UserPrincipalName}",
    params=(UPN,),
    sensitive=True,
)
def unbind_mfa_device(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Unbind a RAM user's MFA device; the device remains and can be bound again."""
    device = _device_of(ctx, find_user(ctx, p["UserPrincipalName"]))
    ctx.conn.execute(
        update(mfa_devices)
        .where(mfa_devices.c.serial_number == device.serial_number)
        .values(user_id=None, bound_ms=None)
    )
    return {"MFADevice": {"SerialNumber": device.serial_number}}


@action(
    "DisableVirtualMFA",
    rw=WRITE,
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
    params=(UPN,),
    sensitive=True,
)
def disable_virtual_mfa(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Unbind a RAM user's MFA device and delete it."""
    device = _device_of(ctx, find_user(ctx, p["UserPrincipalName"]))
    ctx.conn.execute(delete(mfa_devices).where(mfa_devices.c.serial_number == device.serial_number))
    return {}


@action(
    "DeleteVirtualMFADevice",
    rw=WRITE,
    resource=(MFA_DEVICE, "SerialNumber"),
    params=(SERIAL,),
    arn="mfa/{SerialNumber}",
    sensitive=True,
)
def delete_virtual_mfa_device(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a virtual MFA device that is not bound to a user."""
    device = _find_device(ctx, p["SerialNumber"])
    if device.user_id is not None:
        raise ApiError(
            "DeleteConflict.VirtualMFADevice.User",
            "The MFA device is bound to a user: unbind it first (UnbindMFADevice), or use DisableVirtualMFA.",
        )
    ctx.conn.execute(delete(mfa_devices).where(mfa_devices.c.serial_number == device.serial_number))
    return {}


@action("ListVirtualMFADevices", params=(MARKER, max_items(100, 100)), arn="mfa/*")
def list_virtual_mfa_devices(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's virtual MFA devices and the users they are bound to. Seeds are never listed."""
    query = (
        select(
            mfa_devices.c.serial_number,
            mfa_devices.c.bound_ms,
            users.c.id.label("user_id"),
            users.c.upn,
            users.c.display_name,
        )
        .select_from(mfa_devices.outerjoin(users, users.c.id == mfa_devices.c.user_id))
        .where(mfa_devices.c.account_id == ctx.account_id)
    )
    rows, fields = page(ctx.conn, query, mfa_devices.c.serial_number, p["Marker"], p["MaxItems"])
    items = []
    for row in rows:
        item: dict[str, Any] = {"SerialNumber": row.serial_number}
        if row.user_id is not None:
            item["ActivateDate"] = clock.iso(row.bound_ms)
            item["User"] = {"UserId": row.user_id, "UserPrincipalName": row.upn, "DisplayName": row.display_name}
        items.append(item)
    return {"VirtualMFADevices": {"VirtualMFADevice": items}, **fields}


def _user_mfa(ctx: CallContext, upn: str | None) -> tuple[Row[Any], Row[Any] | None]:
    user = find_user(ctx, upn)
    device = bound_device(ctx.conn, user.id)
    if device is not None:
        ctx.reference(MFA_DEVICE, device.serial_number)
    return user, device


@action(
    "GetUserMFAInfo",
    params=(UPN_OPTIONAL,),
    resource=(USER, "UserPrincipalName"),
    self_service="AllowUserToManageMFADevices",
    arn="user/{UserPrincipalName}",
)
def get_user_mfa_info(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the MFA device bound to a RAM user (a RAM user may omit the name to query itself)."""
    _, device = _user_mfa(ctx, p["UserPrincipalName"])
    if device is None:
        return {"IsMFAEnable": False}
    return {"IsMFAEnable": True, "MFADevice": {"SerialNumber": device.serial_number, "Type": DEVICE_TYPE}}


@action(
    "CheckUserMFA",
    params=(UPN_OPTIONAL,),
    resource=(USER, "UserPrincipalName"),
    self_service="AllowUserToManageMFADevices",
    arn="user/{UserPrincipalName}",
    extension=True,
)
def check_user_mfa(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Check what MFA a RAM user faces at console logon: whether a device is bound, whether one must be
    bound, and whether a code is required."""
    user, device = _user_mfa(ctx, p["UserPrincipalName"])
    profile = ctx.conn.execute(
        select(login_profiles.c.mfa_bind_required).where(login_profiles.c.user_id == user.id)
    ).first()
    mandatory = load_preferences(ctx.conn, ctx.account_id).mfa_operation_for_login == "mandatory"
    bind_required = mandatory or bool(profile and profile.mfa_bind_required)
    out: dict[str, Any] = {
        "UserPrincipalName": user.upn,
        "IsMFAEnable": device is not None,
        "MFABindRequired": bind_required,
        "MFARequiredForLogin": device is not None or bind_required,
    }
    if device is not None:
        out["MFADevice"] = {"SerialNumber": device.serial_number, "Type": DEVICE_TYPE}
    return out


def root_has_mfa(acct: Row[Any]) -> bool:
    """Whether an `accounts` row's root identity has a virtual MFA device (`openims account set-mfa`)."""
    return acct.mfa_seed_sealed is not None


def root_mfa_enabled(conn: Connection, account_id: str) -> bool:
    """Whether the account's root identity has a virtual MFA device (`openims account set-mfa`)."""
    return bool(
        conn.execute(
            select(accounts_table.c.mfa_seed_sealed.is_not(None)).where(accounts_table.c.id == account_id)
        ).scalar()
    )


@action("GetAccountMFAInfo")
def get_account_mfa_info(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Whether the root account has MFA: a virtual MFA device set on the server with `openims account set-mfa`,
    asked for at root console sign-in."""
    return {"IsMFAEnable": root_mfa_enabled(ctx.conn, ctx.account_id)}


@action("GetCustomerMFA", extension=True)
def get_customer_mfa(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's MFA settings: root MFA (`openims account set-mfa`), how MFA applies to RAM users' console
    logon, and device counts."""
    prefs = load_preferences(ctx.conn, ctx.account_id)
    return {
        "IsMFAEnable": root_mfa_enabled(ctx.conn, ctx.account_id),
        "MFAOperationForLogin": prefs.mfa_operation_for_login,
        "EnableSaveMFATicket": prefs.enable_save_mfa_ticket,
        "MFADevices": count_devices(ctx.conn, ctx.account_id),
        "MFADevicesInUse": count_devices(ctx.conn, ctx.account_id, bound=True),
    }


def count_devices(conn: Connection, account_id: str, bound: bool = False) -> int:
    """The account's virtual MFA devices, or only those bound to a user."""
    query = select(func.count()).select_from(mfa_devices).where(mfa_devices.c.account_id == account_id)
    if bound:
        query = query.where(mfa_devices.c.user_id.is_not(None))
    return int(conn.execute(query).scalar_one())
