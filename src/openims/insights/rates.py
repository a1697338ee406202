"""ApiCallRateInsight, ApiErrorRateInsight and SigninFailureInsight: events per window (a minute by default)
counted per metric and subject, and each closed window judged against the mean and spread of the same counter
over the 7 days before it (windows without events count as zeros)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from openims.insights import catalogue
from openims.insights.activity import Activity, window_activity
from openims.insights.record import Finding, attributions, tally
from openims.store.tables.insights import insight_counts

Bucket = tuple[str, str, str, int]  # account, metric, subject, window start
ATTRIBUTION_ROWS = 20_000


def count(batch: list[Activity], window_ms: int) -> Counter[Bucket]:
    """The batch's events added up per counter and window."""
    out: Counter[Bucket] = Counter()
    for a in batch:
        for metric, subject in a.metrics():
            out[(a.account_id, metric, subject[:200], a.event_ms - a.event_ms % window_ms)] += 1
    return out


def add_counts(conn: Connection, counts: Counter[Bucket]) -> None:
    if not counts:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(insight_counts)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                insight_counts.c.account_id,
                insight_counts.c.metric,
                insight_counts.c.subject,
                insight_counts.c.bucket_ms,
            ],
            set_={"count": insight_counts.c.count + stmt.excluded.count},
        ),
        [
            {"account_id": k[0], "metric": k[1], "subject": k[2], "bucket_ms": k[3], "count": n}
            for k, n in sorted(counts.items())
        ],
    )


@dataclass(frozen=True)
class Baseline:
    mean: float
    stddev: float
    # The highest count of any window of the baseline: a recurring burst (a nightly job) is the account's own.
    peak: int = 0

    def threshold(self, minimum: int) -> float:
        """The count a window must reach to be far above this baseline, and above anything it holds."""
        return max(
            float(minimum),
            self.mean + catalogue.SIGMAS * self.stddev,
            catalogue.FACTOR * self.mean,
            float(self.peak + 1),
        )


def baseline(conn: Connection, account_id: str, metric: str, subject: str, before_ms: int, window_ms: int) -> Baseline:
    """Mean, standard deviation and peak of the counter per window over the 7 days before `before_ms`."""
    s, q, peak = conn.execute(
        select(
            func.coalesce(func.sum(insight_counts.c.count), 0),
            func.coalesce(func.sum(insight_counts.c.count * insight_counts.c.count), 0),
            func.coalesce(func.max(insight_counts.c.count), 0),
        ).where(
            insight_counts.c.account_id == account_id,
            insight_counts.c.metric == metric,
            insight_counts.c.subject == subject,
            insight_counts.c.bucket_ms >= before_ms - catalogue.BASELINE_MS,
            insight_counts.c.bucket_ms < before_ms,
        )
    ).one()
    n = catalogue.BASELINE_MS / window_ms
    mean = float(s) / n
    return Baseline(mean, math.sqrt(max(0.0, float(q) / n - mean * mean)), int(peak))


def counted(conn: Connection, account_id: str, metric: str, subject: str, start_ms: int, end_ms: int) -> int:
    """The counter's total over windows starting in [start_ms, end_ms)."""
    return int(
        conn.execute(
            select(func.coalesce(func.sum(insight_counts.c.count), 0)).where(
                insight_counts.c.account_id == account_id,
                insight_counts.c.metric == metric,
                insight_counts.c.subject == subject,
                insight_counts.c.bucket_ms >= start_ms,
                insight_counts.c.bucket_ms < end_ms,
            )
        ).scalar_one()
    )


def over_minimum(conn: Connection, window_start: int) -> list[Any]:
    """The counters of the window that reach the smallest minimum of any metric (the only candidates)."""
    least = min(m for _, m in catalogue.METRICS.values())
    return list(
        conn.execute(
            select(insight_counts).where(insight_counts.c.bucket_ms == window_start, insight_counts.c.count >= least)
        )
    )


def activity_tally(
    conn: Connection, account_id: str, metric: str, subject: str, start_ms: int, end_ms: int
) -> dict[str, Counter[str]]:
    """Who, with which key, from where, with which error and calling what, made the counter's events."""
    rows = window_activity(conn, account_id, start_ms, end_ms, ATTRIBUTION_ROWS)
    return tally([a.described() for a in rows if (metric, subject) in a.metrics()])


def statistics(base: Baseline, total: int, start_ms: int, end_ms: int, window_ms: int) -> dict[str, Any]:
    """insightContext.statistics, per window: the baseline's average and the insight's over its duration."""
    windows = max(1, (end_ms - start_ms) // window_ms)
    return {
        "baseline": {"average": round(base.mean, 4)},
        "insight": {"average": round(total / windows, 4)},
        "baselineDuration": catalogue.BASELINE_MS // 60_000,
        "insightDuration": max(1, (end_ms - start_ms) // 60_000),
        "insightCount": total,
    }


def start_finding(conn: Connection, row: Any, base: Baseline, threshold: float, window_ms: int) -> Finding:
    """The Start of a rate insight for a window whose counter reached `threshold`."""
    insight_type, _ = catalogue.METRICS[row.metric]
    end = row.bucket_ms + window_ms
    counts = activity_tally(conn, row.account_id, row.metric, row.subject, row.bucket_ms, end)
    top = {name: (c.most_common(1)[0][0] if c else "") for name, c in counts.items()}
    what = {
        "write": "write calls",
        "error": "failed calls",
        "signin_user": f"failed console sign-ins of {row.subject}",
        "signin_ip": f"failed console sign-ins from {row.subject}",
    }[row.metric]
    about = {
        "serviceName": "",
        "eventName": top.get("eventName", ""),
        "sourceIpAddress": row.subject if row.metric == "signin_ip" else top.get("sourceIpAddress", ""),
        "accessKeyId": top.get("accessKeyId", ""),
        "userName": row.subject if row.metric == "signin_user" else top.get("userName", ""),
        "reason": f"{row.count} {what} in a window, against a baseline of {base.mean:.3f} per window "
        f"(threshold {threshold:.1f})",
    }
    return Finding(
        row.account_id,
        insight_type,
        row.subject or row.account_id,
        row.bucket_ms,
        about,
        statistics(base, row.count, row.bucket_ms, end, window_ms),
        attributions(counts, 1.0),
        metric=(row.metric, row.subject),
        threshold=threshold,
        tally=counts,
    )
