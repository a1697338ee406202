"""The columns of the `events` table a query sees, named as in the ActionTrail event, and how each is computed
from the stored row on SQLite. PostgreSQL's view (migration 0019) computes the same columns under the same names;
a migration is a snapshot, so it spells them out itself."""

from __future__ import annotations

# (name, SQLite expression over main.events, description). The first twelve are indexed columns (fast);
# the others are read from the event's JSON, which costs a parse per row.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("eventId", "event_id", "the event's id"),
    ("eventTime", "strftime('%Y-%m-%dT%H:%M:%SZ', event_ms / 1000, 'unixepoch')", "UTC, YYYY-MM-DDThh:mm:ssZ"),
    ("eventTimeMs", "event_ms", "the event's time in milliseconds since the epoch (OpenIMS; fast range filters)"),
    ("eventName", "event_name", "the action or operation (CreateUser, ConsoleSignin)"),
    ("eventRW", "event_rw", "Read or Write"),
    ("serviceName", "service_name", "Ims, Actiontrail, Ram, AasCustomer, ..."),
    ("userName", "user_name", "the caller: root, a RAM user's name@domain, ..."),
    ("accessKeyId", "access_key_id", "the AccessKey used, empty for console sessions"),
    ("resourceType", "resource_type", "the resource type(s), ';'-separated"),
    ("resourceName", "resource_name", "the resource name(s)"),
    ("errorCode", "error_code", "the error code of a failed call, NULL on success"),
    ("sourceIpAddress", "source_ip", "the caller's IP address"),
    ("mfaUsed", "mfa_used", "whether the caller had passed MFA (1/0 on SQLite, true/false on PostgreSQL)"),
    ("eventType", "body ->> '$.eventType'", "ApiCall, ConsoleSignin, ConsoleOperation, ..."),
    ("eventSource", "body ->> '$.eventSource'", "the host that handled the call"),
    ("userAgent", "body ->> '$.userAgent'", "the caller's user agent"),
    ("userType", "body ->> '$.userIdentity.type'", "userIdentity.type: root-account, ram-user, ..."),
    ("principalId", "body ->> '$.userIdentity.principalId'", "userIdentity.principalId"),
    ("requestId", "body ->> '$.requestId'", "the request's id"),
    ("errorMessage", "body ->> '$.errorMessage'", "the error message of a failed call"),
    ("event", "body", "the whole event as JSON text (SQLite) or jsonb (PostgreSQL), for JSON functions"),
)

NAMES = tuple(name for name, _, _ in COLUMNS)
