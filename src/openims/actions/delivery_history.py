"""ActionTrail's historic delivery jobs: CreateDeliveryHistoryJob, GetDeliveryHistoryJob, ListDeliveryHistoryJobs
and DeleteDeliveryHistoryJob. The delivery itself runs in the deliverer (`openims.delivery.history`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select, update

from openims import clock
from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, WRITE, action
from openims.actions.trails import NAME, TRAIL
from openims.delivery import history, outbox
from openims.errors import ApiError
from openims.params import Int, Str
from openims.store.tables.key_activity import delivery_history_jobs as jobs
from openims.store.tables.trails import trails

JOB = "ACS::ActionTrail::HistoryDeliveryJob"
DAY_MS = 24 * 3600 * 1000
JOB_ID = Int("JobId", required=True, min=1, max=2**62)
TRAIL_NAME = Str("TrailName", required=True, max_len=NAME.max_len)
CLIENT_TOKEN = Str("ClientToken", max_len=64, pattern=r"[\x20-\x7e]+", pattern_doc="must be ASCII")


def _find(ctx: CallContext, job_id: int) -> Row[Any]:
    row = ctx.conn.execute(
        select(jobs).where(jobs.c.id == job_id, jobs.c.account_id == ctx.account_id, jobs.c.deleted_ms.is_(None))
    ).first()
    if row is None:
        raise ApiError("EntityNotExist.DeliveryHistoryJob", f"The historic delivery job does not exist: {job_id}.")
    ctx.reference(JOB, str(job_id))
    return row


def _view(ctx: CallContext, row: Row[Any]) -> dict[str, Any]:
    """A job as ActionTrail lists it: StartTime is where the delivered window starts (the oldest event it may
    hold), EndTime when the job ended ("" until then). DeliveredEventCount, WindowEndTime and ErrorMessage are
    OpenIMS additions (the SDK ignores them)."""
    out: dict[str, Any] = {
        "JobId": row.id,
        "TrailName": row.trail_name,
        "HomeRegion": ctx.runtime.settings.region,
        "JobStatus": row.status,
        "CreatedTime": clock.iso(row.created_ms),
        "UpdatedTime": clock.iso(row.updated_ms),
        "StartTime": clock.iso(row.window_start_ms),
        "EndTime": clock.iso(row.finished_ms) if row.finished_ms else "",
        "WindowEndTime": clock.iso(row.window_end_ms),
        "DeliveredEventCount": row.delivered,
    }
    if row.last_error:
        out["ErrorMessage"] = row.last_error
    return out


@action(
    "CreateDeliveryHistoryJob",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TRAIL, "TrailName"),
    arn="trail/{TrailName}",
    params=(TRAIL_NAME, CLIENT_TOKEN),
)
def create_delivery_history_job(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Deliver to the trail, once and in the background, the account's stored events from the start of the
    retention window up to when the trail's live delivery began (its first StartLogging; for a trail never
    started, now), that match its EventRW, to every target of the trail. Only one job runs at a time in an
    account, and a trail gets one job: creating it again resumes a failed or deleted job where it stopped,
    and a ClientToken already used returns that job."""
    if p["ClientToken"]:
        same = ctx.conn.execute(
            select(jobs.c.id).where(jobs.c.account_id == ctx.account_id, jobs.c.client_token == p["ClientToken"])
        ).scalar()
        if same is not None:
            ctx.reference(JOB, str(same))
            return {"JobId": same}
    trail = ctx.conn.execute(
        select(trails).where(trails.c.account_id == ctx.account_id, trails.c.name == p["TrailName"])
    ).first()
    if trail is None:
        raise ApiError("TrailNotFoundException", "The specified Trail does not exist.", 404)
    running = ctx.conn.execute(
        select(jobs.c.id).where(
            jobs.c.account_id == ctx.account_id, jobs.c.status < history.COMPLETE, jobs.c.deleted_ms.is_(None)
        )
    ).scalar()
    if running is not None:
        raise ApiError(
            "Conflict.DeliveryHistoryJob.Running",
            f"The historic delivery job {running} is still running: an account runs one at a time.",
        )
    earlier = ctx.conn.execute(select(jobs).where(jobs.c.trail_id == trail.id)).first()
    if earlier is not None:
        if earlier.status == history.COMPLETE:
            raise ApiError(
                "EntityAlreadyExists.DeliveryHistoryJob",
                f"The trail's stored events were already delivered by the historic delivery job {earlier.id}.",
            )
        # A failed or deleted job resumes from its cursor: what it delivered is not sent again.
        ctx.conn.execute(
            update(jobs)
            .where(jobs.c.id == earlier.id)
            .values(
                status=history.INITIALIZING,
                deleted_ms=None,
                finished_ms=None,
                attempts=0,
                next_attempt_ms=0,
                last_error=None,
                client_token=p["ClientToken"] or earlier.client_token,
                updated_ms=ctx.now_ms,
            )
        )
        ctx.reference(JOB, str(earlier.id))
        return {"JobId": earlier.id}
    live_from = trail.live_from_ms
    if live_from is None:
        # Never started: the job covers everything up to now, and a later StartLogging delivers from here on.
        live_from = ctx.now_ms
        ctx.conn.execute(update(trails).where(trails.c.id == trail.id).values(live_from_ms=live_from))
        outbox.new_generation(ctx.conn, ctx.account_id)
    job_id = ctx.conn.execute(
        insert(jobs)
        .values(
            account_id=ctx.account_id,
            trail_id=trail.id,
            trail_name=trail.name,
            client_token=p["ClientToken"],
            status=history.INITIALIZING,
            window_start_ms=ctx.now_ms - ctx.runtime.settings.event_retention_days * DAY_MS,
            window_end_ms=live_from,
            event_rw=trail.event_rw,
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
        .returning(jobs.c.id)
    ).scalar_one()
    ctx.reference(JOB, str(job_id))
    return {"JobId": job_id}


@action("GetDeliveryHistoryJob", service=ACTIONTRAIL, resource=(JOB, "JobId"), arn="*", params=(JOB_ID,))
def get_delivery_history_job(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """A historic delivery job: its JobStatus (0 initializing, 1 delivering, 2 complete, 3 failed), the same in
    its one region's Status, and its times."""
    row = _find(ctx, p["JobId"])
    out = _view(ctx, row)
    out["Status"] = [{"Region": ctx.runtime.settings.region, "Status": row.status}]
    return out


@action(
    "ListDeliveryHistoryJobs",
    service=ACTIONTRAIL,
    arn="*",
    params=(Int("PageNumber", min=1, max=10**6, default=1), Int("PageSize", min=1, max=100, default=20)),
)
def list_delivery_history_jobs(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's historic delivery jobs, newest first, a page at a time; TotalCount counts them all."""
    mine = (jobs.c.account_id == ctx.account_id, jobs.c.deleted_ms.is_(None))
    total = ctx.conn.execute(select(func.count()).select_from(jobs).where(*mine)).scalar_one()
    size, number = p["PageSize"], p["PageNumber"]
    rows = ctx.conn.execute(
        select(jobs).where(*mine).order_by(jobs.c.id.desc()).limit(size).offset((number - 1) * size)
    ).all()
    return {
        "DeliveryHistoryJobs": [_view(ctx, r) for r in rows],
        "PageNumber": number,
        "PageSize": size,
        "TotalCount": total,
    }


@action("DeleteDeliveryHistoryJob", service=ACTIONTRAIL, rw=WRITE, resource=(JOB, "JobId"), arn="*", params=(JOB_ID,))
def delete_delivery_history_job(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove a job from the lists; a running job stops after the chunk in flight. What it delivered stays
    delivered: creating a job for the trail again resumes it, and a complete one is never repeated."""
    row = _find(ctx, p["JobId"])
    ctx.conn.execute(update(jobs).where(jobs.c.id == row.id).values(deleted_ms=ctx.now_ms, updated_ms=ctx.now_ms))
    return {}
