"""IpInsight and AkInsight: what each AccessKey and console user normally does, learned event by event, and the
events that depart from it (a source IP not seen for it in the 7-day baseline; a key used again after a long
silence, or for a service or an action class it never used in the event history kept)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from openims.insights import catalogue
from openims.insights.activity import Activity
from openims.insights.record import Finding
from openims.store.schema import access_keys
from openims.store.tables.insights import insight_profiles

Key = tuple[str, str, str, str]  # account, subject, dimension, value
CHUNK = 400


class Profiles:
    """The profiles of the subjects of a batch of events: read once, updated in memory, written back."""

    def __init__(self, conn: Connection, batch: list[Activity]) -> None:
        self.rows: dict[Key, list[int]] = {}
        self.dirty: set[Key] = set()
        subjects = sorted({(a.account_id, a.subject) for a in batch if a.subject})
        for i in range(0, len(subjects), CHUNK):
            part = subjects[i : i + CHUNK]
            query = select(insight_profiles).where(
                tuple_(insight_profiles.c.account_id, insight_profiles.c.subject).in_(part)
            )
            for r in conn.execute(query):
                self.rows[(r.account_id, r.subject, r.dimension, r.value)] = [r.first_ms, r.last_ms]
        # When each key never seen before was created (a first use long after is AkInsight's too).
        unseen = sorted({a.access_key_id for a in batch if a.access_key_id and not self.get(a, "seen", "")})
        self.created: dict[str, int] = {}
        for i in range(0, len(unseen), CHUNK):
            query = select(access_keys.c.id, access_keys.c.created_ms).where(
                access_keys.c.id.in_(unseen[i : i + CHUNK])
            )
            self.created.update({r.id: r.created_ms for r in conn.execute(query)})

    def get(self, a: Activity, dimension: str, value: str) -> list[int] | None:
        return self.rows.get((a.account_id, a.subject, dimension, value))

    def known(self, a: Activity, dimension: str, since_ms: int) -> list[str]:
        """The values of `dimension` the subject used since `since_ms` (its baseline)."""
        return sorted(
            k[3]
            for k, (_, last) in self.rows.items()
            if k[0] == a.account_id and k[1] == a.subject and k[2] == dimension and last >= since_ms
        )

    def note(self, a: Activity, dimension: str, value: str) -> None:
        key = (a.account_id, a.subject, dimension, value[:160])
        found = self.rows.get(key)
        if found is None:
            self.rows[key] = [a.event_ms, a.event_ms]
        else:
            found[0], found[1] = min(found[0], a.event_ms), max(found[1], a.event_ms)
        self.dirty.add(key)

    def flush(self, conn: Connection) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        rows = [
            {"account_id": k[0], "subject": k[1], "dimension": k[2], "value": k[3], "first_ms": v[0], "last_ms": v[1]}
            for k in sorted(self.dirty)
            for v in [self.rows[k]]
        ]
        for i in range(0, len(rows), CHUNK):
            stmt = dialect.insert(insight_profiles)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[
                        insight_profiles.c.account_id,
                        insight_profiles.c.subject,
                        insight_profiles.c.dimension,
                        insight_profiles.c.value,
                    ],
                    set_={"first_ms": stmt.excluded.first_ms, "last_ms": stmt.excluded.last_ms},
                ),
                rows[i : i + CHUNK],
            )
        self.dirty.clear()


def _one() -> dict[str, Any]:
    """Statistics of a single unusual event against a baseline in which it never happened."""
    return {
        "baseline": {"average": 0.0},
        "insight": {"average": 1.0},
        "baselineDuration": catalogue.BASELINE_MS // 60_000,
        "insightDuration": 1,
        "insightCount": 1,
    }


def about(a: Activity, reason: str) -> dict[str, str]:
    """insightDetails' description of the activity an insight is about."""
    return {
        "serviceName": a.service_name,
        "eventName": a.event_name,
        "sourceIpAddress": a.place,
        "accessKeyId": a.access_key_id,
        "userName": a.user_name,
        "reason": reason,
        "relatedEventId": a.event_id,
    }


def judge(a: Activity, p: Profiles) -> list[Finding]:
    """The departures this event shows from its subject's profile (each with what later events must match to
    count as more of the same unusual activity); then learns the event into the profile."""
    if not a.subject:
        return []
    t = a.event_ms
    seen = p.get(a, "seen", "")
    learned = seen is not None and t - seen[0] >= catalogue.LEARNING_MS
    since = t - catalogue.BASELINE_MS
    who = f"AccessKey {a.access_key_id}" if a.access_key_id else f"console user {a.user_name}"
    found: list[Finding] = []
    if a.place and learned:
        ip = p.get(a, "ip", a.place)
        if ip is None or ip[1] < since:
            stats = _one()
            known = p.known(a, "ip", since)
            f = Finding(
                a.account_id,
                catalogue.IP,
                a.place,
                t,
                about(a, f"{who} acted from {a.place}, which it had not used in the 7 days before"),
                stats,
                [
                    {
                        "attribute": "sourceIpAddress",
                        "insight": [{"value": a.place, "average": 1.0}],
                        "baseline": [{"value": v, "average": 0.0} for v in known[:10]],
                    }
                ],
            )
            f.match = {"sourceIpAddress": a.place}
            found.append(f)
    if a.access_key_id:
        reason, match = "", {"accessKeyId": a.access_key_id}
        created = p.created.get(a.access_key_id)
        if seen is not None and t - seen[1] >= catalogue.DORMANT_MS:
            reason = f"{who} was used again after {(t - seen[1]) // 86_400_000} days unused"
        elif seen is None and created is not None and t - created >= catalogue.DORMANT_MS:
            reason = f"{who} was used for the first time {(t - created) // 86_400_000} days after it was created"
        elif learned:
            for dimension, value, what, key in (
                ("service", a.service_name, "service", "serviceName"),
                ("class", a.action_class, "action class", "actionClass"),
            ):
                # Never used: what a key does rarely (a monthly clean-up) is still its own, however long ago.
                if p.get(a, dimension, value) is None:
                    reason = f"{who} was used for the {what} {value}, which it had never used"
                    match[key] = value
                    break
        if reason:
            f = Finding(a.account_id, catalogue.AK, a.access_key_id, t, about(a, reason), _one(), [])
            f.match = match
            found.append(f)
    p.note(a, "seen", "")
    if a.place:
        p.note(a, "ip", a.place)
    p.note(a, "service", a.service_name)
    p.note(a, "class", a.action_class)
    return found


def matches(a: Activity, match: dict[str, str]) -> bool:
    """Whether an event is more of an open IpInsight's or AkInsight's unusual activity."""
    have = {
        "sourceIpAddress": a.place,
        "accessKeyId": a.access_key_id,
        "serviceName": a.service_name,
        "actionClass": a.action_class,
    }
    return bool(match) and all(have.get(k) == v for k, v in match.items())
