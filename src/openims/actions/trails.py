"""ActionTrail trails (API 2020-07-06): create, update, delete, describe, status, start and stop logging.

A trail delivers the account's events (filtered by EventRW) to an OSS/S3 bucket, an SLS Logstore and, as
OpenIMS extensions, to syslog over TCP/TLS and to a signed HTTPS webhook. Delivery itself lives in
`openims.delivery`; importing it here registers the outbox hook and the server's deliverer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, func, insert, select, update

from openims import clock, ids
from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, WRITE, action
from openims.delivery import outbox
from openims.delivery.destinations import SLS_ARN, destinations
from openims.delivery.targets import OSS, SLS, SYSLOG, WEBHOOK, kinds_of, split_host_port
from openims.errors import ApiError, already_exists, invalid, not_found
from openims.params import Bool, Str, StrList
from openims.store.tables.trails import trail_target_status, trails

TRAIL = "ACS::ActionTrail::Trail"
MAX_TRAILS = 5  # per account and region, as ActionTrail
ARN = "trail/{Name}"

NAME = Str(
    "Name",
    required=True,
    min_len=6,
    max_len=36,
    pattern=r"[a-z][a-z0-9_-]*",
    pattern_doc="must start with a lowercase letter and contain only lowercase letters, digits, hyphens (-) "
    "and underscores (_)",
)
EVENT_RW_CHOICES = ("Read", "Write", "All")
OSS_BUCKET = Str(
    "OssBucketName",
    min_len=3,
    max_len=63,
    pattern=r"[a-z0-9][a-z0-9-]*",
    pattern_doc="must start with a lowercase letter or a digit and contain only lowercase letters, "
    "digits and hyphens (-)",
)
OSS_PREFIX = Str(
    "OssKeyPrefix",
    min_len=6,
    max_len=32,
    pattern=r"[A-Za-z][A-Za-z0-9/_-]*",
    pattern_doc="must start with a letter and contain only letters, digits, hyphens (-), forward "
    "slashes (/) and underscores (_)",
)
ROLE_DOC = "must be a RAM role ARN such as acs:ram::<account ID>:role/<role name>"
OSS_ROLE = Str(
    "OssWriteRoleArn", max_len=256, pattern=r"acs:ram::\d{1,32}:role/[A-Za-z0-9._/-]{1,128}", pattern_doc=ROLE_DOC
)
SLS_ROLE = Str(
    "SlsWriteRoleArn", max_len=256, pattern=r"acs:ram::\d{1,32}:role/[A-Za-z0-9._/-]{1,128}", pattern_doc=ROLE_DOC
)
SLS_PROJECT = Str("SlsProjectArn", max_len=256)
TRAIL_REGION = Str(
    "TrailRegion",
    max_len=256,
    pattern=r"All|[a-z0-9-]+(,[a-z0-9-]+)*",
    pattern_doc="must be All or a comma-separated list of region IDs",
)
MAX_COMPUTE = (Str("MaxComputeProjectArn", max_len=256), Str("MaxComputeWriteRoleArn", max_len=256))
# OpenIMS extensions (no SDK field; send them with a generic signed call or the CLI).
SYSLOG_ADDRESS = Str("SyslogAddress", max_len=262)
SYSLOG_TLS = Bool("SyslogTls")
WEBHOOK_URL = Str("WebhookUrl", max_len=2048)
WEBHOOK_SECRET = Str("WebhookSecret", min_len=16, max_len=256, secret=True)
TARGET_PARAM = {"Oss": OSS, "Sls": SLS, "Syslog": SYSLOG, "Webhook": WEBHOOK}
REMOVE_TARGETS = StrList(
    "RemoveTargets", comma_separated=True, max_items=4, item=Str("RemoveTargets", choices=tuple(TARGET_PARAM))
)

CONFIG_PARAMS = (
    OSS_BUCKET,
    OSS_PREFIX,
    OSS_ROLE,
    SLS_PROJECT,
    SLS_ROLE,
    *MAX_COMPUTE,
    SYSLOG_ADDRESS,
    SYSLOG_TLS,
    WEBHOOK_URL,
    WEBHOOK_SECRET,
)


def find_trail(ctx: CallContext, name: str) -> Row[Any]:
    row = ctx.conn.execute(select(trails).where(trails.c.account_id == ctx.account_id, trails.c.name == name)).first()
    if row is None:
        raise not_found("Trail", name)
    return row


def trail_arn(ctx: CallContext, name: str) -> str:
    return f"acs:actiontrail:{ctx.runtime.settings.region}:{ctx.account_id}:trail/{name}"


def trail_view(ctx: CallContext, row: Row[Any]) -> dict[str, Any]:
    """The trail's configuration as CreateTrail and UpdateTrail return it (never the webhook secret)."""
    out: dict[str, Any] = {
        "Name": row.name,
        "HomeRegion": ctx.runtime.settings.region,
        "EventRW": row.event_rw,
        "TrailRegion": row.trail_region,
        "OssBucketName": row.oss_bucket_name,
        "OssKeyPrefix": row.oss_key_prefix,
        "OssWriteRoleArn": row.oss_write_role_arn,
        "SlsProjectArn": row.sls_project_arn,
        "SlsWriteRoleArn": row.sls_write_role_arn,
        "MaxComputeProjectArn": "",
        "MaxComputeWriteRoleArn": "",
    }
    if row.syslog_address:
        out.update(SyslogAddress=row.syslog_address, SyslogTls=bool(row.syslog_tls))
    if row.webhook_url:
        out["WebhookUrl"] = row.webhook_url
    return out


def _status(row: Row[Any]) -> str:
    if row.is_logging:
        return "Enable"
    return "Fresh" if row.start_logging_ms is None else "Disable"


def _check_config(p: dict[str, Any]) -> None:
    """Rules beyond each parameter's own format."""
    for param in MAX_COMPUTE:
        if p.get(param.name):
            raise invalid(
                param.name,
                "Unsupported",
                f'The parameter - "{param.name}" is not supported: OpenIMS delivers '
                "to OSS/S3, SLS, syslog and webhooks, not to MaxCompute.",
            )
    arn = p.get("SlsProjectArn")
    if arn and not SLS_ARN.fullmatch(arn):
        raise invalid(
            "SlsProjectArn",
            "Format",
            'The parameter - "SlsProjectArn" must be acs:log:<region>:<account ID>:project/<project name>.',
        )
    check_push_targets(p)


def check_push_targets(p: dict[str, Any]) -> None:
    """The syslog address and webhook URL given, if any, are well formed (trails and alert rules)."""
    address = p.get("SyslogAddress")
    if address and split_host_port(address) is None:
        raise invalid("SyslogAddress", "Format", 'The parameter - "SyslogAddress" must be host:port (or [IPv6]:port).')
    url = p.get("WebhookUrl")
    if url:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password or parts.fragment:
            raise invalid(
                "WebhookUrl",
                "Format",
                'The parameter - "WebhookUrl" must be an https:// URL with a host '
                "and no user name, password or fragment (the secret goes in WebhookSecret).",
            )


def _check_access(ctx: CallContext, p: dict[str, Any]) -> None:
    """The bucket and project given must be usable by this account (the deliverer checks again before each
    delivery). Codes and messages are ActionTrail's CreateTrail 403s for a bucket or project it may not write to.
    Unreadable settings are not refused here: delivery then fails with the cause shown by GetTrailStatus."""
    found = destinations(ctx.runtime.settings)
    if p.get("OssBucketName") and (why := found.bucket(p["OssBucketName"], ctx.account_id).denied):
        raise ApiError(
            "InsufficientBucketPolicyException", f"Access to the specified OSS bucket was denied: {why}.", 403
        )
    if p.get("SlsProjectArn") and (why := found.project(p["SlsProjectArn"], ctx.account_id).denied):
        raise ApiError(
            "InsufficientSlsPolicyException", f"Access to the specified Log Service project was denied: {why}.", 403
        )


def _config_values(ctx: CallContext, p: dict[str, Any], trail_id: str) -> dict[str, Any]:
    """Column values for the configuration parameters that were given."""
    columns = {
        "OssBucketName": "oss_bucket_name",
        "OssKeyPrefix": "oss_key_prefix",
        "OssWriteRoleArn": "oss_write_role_arn",
        "SlsProjectArn": "sls_project_arn",
        "SlsWriteRoleArn": "sls_write_role_arn",
        "TrailRegion": "trail_region",
        "EventRW": "event_rw",
        "SyslogAddress": "syslog_address",
        "SyslogTls": "syslog_tls",
        "WebhookUrl": "webhook_url",
    }
    values = {column: p[name] for name, column in columns.items() if p.get(name) is not None}
    if p.get("WebhookSecret"):
        values["webhook_secret_sealed"] = ctx.runtime.master_key.seal(p["WebhookSecret"], context=trail_id)
    return values


def _require_target(row: Row[Any]) -> None:
    if not kinds_of(row):
        raise ApiError(
            "MissingParameter",
            "A trail needs at least one destination: OssBucketName or SlsProjectArn "
            "(or the OpenIMS extensions SyslogAddress and WebhookUrl).",
        )
    if row.webhook_url and row.webhook_secret_sealed is None:
        raise ApiError(
            "MissingParameter",
            'The input parameter "WebhookSecret" that is mandatory for a webhook destination is not supplied.',
        )


def _changed(ctx: CallContext, trail_id: str) -> Row[Any]:
    """After any change: the trail as stored, checked, and the account's trail cache invalidated everywhere."""
    row = ctx.conn.execute(select(trails).where(trails.c.id == trail_id)).one()
    _require_target(row)
    outbox.new_generation(ctx.conn, ctx.account_id)
    return row


@action(
    "CreateTrail",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TRAIL, "Name"),
    arn=ARN,
    params=(
        NAME,
        Str("EventRW", choices=EVENT_RW_CHOICES, default="Write"),
        Bool("IsOrganizationTrail"),
        TRAIL_REGION,
        *CONFIG_PARAMS,
    ),
)
def create_trail(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a single-account trail delivering to an OSS bucket and/or an SLS project (and, as OpenIMS
    extensions, to syslog or a webhook). It does not deliver until StartLogging. At most 5 per account."""
    if p["IsOrganizationTrail"]:
        raise invalid(
            "IsOrganizationTrail",
            "Unsupported",
            'The parameter - "IsOrganizationTrail" is not supported: '
            "OpenIMS has no resource directory, so trails are single-account.",
        )
    _check_config(p)
    _check_access(ctx, p)
    if ctx.conn.execute(
        select(trails.c.id).where(trails.c.account_id == ctx.account_id, trails.c.name == p["Name"])
    ).first():
        raise already_exists("Trail", p["Name"])
    count = ctx.conn.execute(
        select(func.count()).select_from(trails).where(trails.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= MAX_TRAILS:
        raise ApiError("LimitExceeded.Trail", f"At most {MAX_TRAILS} trails are allowed per account in a region.")
    trail_id = ids.event_id().replace("-", "").lower()
    values = _config_values(ctx, {**p, "TrailRegion": p["TrailRegion"] or "All"}, trail_id)
    ctx.conn.execute(
        insert(trails).values(
            id=trail_id,
            account_id=ctx.account_id,
            name=p["Name"],
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
            **values,
        )
    )
    return trail_view(ctx, _changed(ctx, trail_id))


@action(
    "UpdateTrail",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TRAIL, "Name"),
    arn=ARN,
    params=(
        NAME,
        Str("EventRW", choices=EVENT_RW_CHOICES),
        TRAIL_REGION,
        *CONFIG_PARAMS,
        REMOVE_TARGETS,
    ),
)
def update_trail(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a trail's filter or destinations; parameters not given keep their values. The OpenIMS extension
    `RemoveTargets` (comma-separated Oss, Sls, Syslog, Webhook) removes destinations. Queued events go to the
    destinations the trail has when they are delivered."""
    row = find_trail(ctx, p["Name"])
    _check_config(p)
    _check_access(ctx, p)
    values = _config_values(ctx, p, row.id)
    cleared: dict[str, dict[str, Any]] = {
        "Oss": {"oss_bucket_name": "", "oss_key_prefix": "", "oss_write_role_arn": ""},
        "Sls": {"sls_project_arn": "", "sls_write_role_arn": ""},
        "Syslog": {"syslog_address": "", "syslog_tls": False},
        "Webhook": {"webhook_url": "", "webhook_secret_sealed": None},
    }
    for name in p["RemoveTargets"]:
        values.update(cleared[name])
        ctx.conn.execute(
            delete(trail_target_status).where(
                trail_target_status.c.trail_id == row.id, trail_target_status.c.target == TARGET_PARAM[name]
            )
        )
    ctx.conn.execute(update(trails).where(trails.c.id == row.id).values(updated_ms=ctx.now_ms, **values))
    return trail_view(ctx, _changed(ctx, row.id))


@action("DeleteTrail", service=ACTIONTRAIL, rw=WRITE, resource=(TRAIL, "Name"), arn=ARN, params=(NAME,), sensitive=True)
def delete_trail(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a trail. Events it had queued and not yet delivered are not delivered (they stay in the event history)."""
    row = find_trail(ctx, p["Name"])
    ctx.conn.execute(delete(trails).where(trails.c.id == row.id))
    outbox.new_generation(ctx.conn, ctx.account_id)
    return {}


@action(
    "DescribeTrails",
    service=ACTIONTRAIL,
    arn="*",
    params=(
        StrList("NameList", comma_separated=True, max_items=MAX_TRAILS * 4, item=Str("NameList", max_len=36)),
        Bool("IncludeShadowTrails"),
        Bool("IncludeOrganizationTrail"),
    ),
)
def describe_trails(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's trails (all, or those in the comma-separated NameList), oldest first."""
    query = select(trails).where(trails.c.account_id == ctx.account_id).order_by(trails.c.created_ms, trails.c.name)
    if p["NameList"]:
        query = query.where(trails.c.name.in_(p["NameList"]))
    found = []
    for row in ctx.conn.execute(query):
        ctx.reference(TRAIL, row.name)
        found.append(
            {
                **trail_view(ctx, row),
                "Region": ctx.runtime.settings.region,
                "Status": _status(row),
                "TrailArn": trail_arn(ctx, row.name),
                "IsOrganizationTrail": False,
                "OssBucketLocation": "",
                "CreateTime": clock.iso(row.created_ms),
                "UpdateTime": clock.iso(row.updated_ms),
                "StartLoggingTime": clock.iso(row.start_logging_ms),
                "StopLoggingTime": clock.iso(row.stop_logging_ms),
            }
        )
    return {"TrailList": found}


@action(
    "GetTrailStatus", service=ACTIONTRAIL, resource=(TRAIL, "Name"), arn=ARN, params=(NAME, Bool("IsOrganizationTrail"))
)
def get_trail_status(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Whether the trail is logging, and how its deliveries went: LatestDelivery* for OSS, syslog and webhooks,
    LatestDeliveryLogService* for SLS. OpenIMS adds `PendingEvents` and a `Targets` list with each one's status."""
    row = find_trail(ctx, p["Name"])
    kinds = kinds_of(row)
    status = {
        s.target: s
        for s in ctx.conn.execute(select(trail_target_status).where(trail_target_status.c.trail_id == row.id))
        if s.target in kinds
    }

    def latest(of: list[str]) -> tuple[str, str]:
        rows = [status[k] for k in of if k in status]
        success = max((s.last_success_ms for s in rows if s.last_success_ms), default=None)
        failed = max((s for s in rows if s.last_error_ms), key=lambda s: s.last_error_ms, default=None)
        return clock.iso(success), (failed.last_error or "") if failed else ""

    def healthy(kind: str) -> bool:
        return kind in kinds and (kind not in status or bool(status[kind].ok))

    other_time, other_error = latest([k for k in kinds if k != SLS])
    sls_time, sls_error = latest([SLS])
    targets = []
    for kind in kinds:
        s = status.get(kind)
        targets.append(
            {
                "Target": kind,
                "Status": "Pending" if s is None else ("OK" if s.ok else "Failing"),
                "LatestDeliveryTime": clock.iso(s.last_success_ms) if s else "",
                "LatestDeliveryError": (s.last_error or "") if s else "",
                "LatestDeliveryErrorTime": clock.iso(s.last_error_ms) if s else "",
            }
        )
    return {
        "IsLogging": bool(row.is_logging),
        "StartLoggingTime": clock.iso(row.start_logging_ms),
        "StopLoggingTime": clock.iso(row.stop_logging_ms),
        "LatestDeliveryTime": other_time,
        "LatestDeliveryError": other_error,
        "LatestDeliveryLogServiceTime": sls_time,
        "LatestDeliveryLogServiceError": sls_error,
        "OssBucketStatus": healthy(OSS),
        "SlsLogStoreStatus": healthy(SLS),
        "PendingEvents": outbox.pending_count(ctx.conn, row.id),
        "Targets": targets,
    }


def _set_logging(ctx: CallContext, name: str, on: bool) -> dict[str, Any]:
    row = find_trail(ctx, name)
    if bool(row.is_logging) != on:
        times = {"start_logging_ms": ctx.now_ms} if on else {"stop_logging_ms": ctx.now_ms}
        if on and row.live_from_ms is None:
            # The first start: live delivery begins here; older events are a historic delivery job's.
            times["live_from_ms"] = ctx.now_ms
        ctx.conn.execute(update(trails).where(trails.c.id == row.id).values(is_logging=on, **times))
        outbox.new_generation(ctx.conn, ctx.account_id)
    return {}


@action("StartLogging", service=ACTIONTRAIL, rw=WRITE, resource=(TRAIL, "Name"), arn=ARN, params=(NAME,))
def start_logging(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Start delivering: every event from this call on (this call's own included) is delivered by the trail."""
    return _set_logging(ctx, p["Name"], True)


@action("StopLogging", service=ACTIONTRAIL, rw=WRITE, resource=(TRAIL, "Name"), arn=ARN, params=(NAME,), sensitive=True)
def stop_logging(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Stop delivering new events; this call's own event and events already queued are still delivered."""
    return _set_logging(ctx, p["Name"], False)
