"""The query templates every account has (preset, read-only) and an account's own saved ones."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from openims.errors import ApiError, already_exists, not_found
from openims.store.tables.queries import query_templates

PRESET_PREFIX = "preset-"


@dataclass(frozen=True)
class Template:
    template_id: str
    name: str
    sql: str
    simple_query: bool = False

    @property
    def preset(self) -> bool:
        return self.template_id.startswith(PRESET_PREFIX)

    def shape(self) -> dict[str, Any]:
        return {
            "TemplateId": self.template_id,
            "TemplateName": self.name,
            "TemplateSql": self.sql,
            "SimpleQuery": self.simple_query,
        }


# Written to run unchanged on SQLite and PostgreSQL (docs/query.md lists them).
PRESETS: tuple[Template, ...] = (
    Template(
        "preset-failed-signins-by-ip",
        "Failed sign-ins by source IP",
        "SELECT sourceIpAddress, count(*) AS failures, min(eventTime) AS first, max(eventTime) AS last "
        "FROM events WHERE eventName = 'ConsoleSignin' AND errorCode IS NOT NULL "
        "GROUP BY sourceIpAddress ORDER BY failures DESC",
    ),
    Template(
        "preset-deletes-by-user",
        "Delete* calls by user",
        "SELECT userName, eventName, count(*) AS calls FROM events "
        "WHERE eventName LIKE 'Delete%' GROUP BY userName, eventName ORDER BY calls DESC",
    ),
    Template(
        "preset-keys-from-many-ips",
        "AccessKeys used from more than 3 IP addresses",
        "SELECT accessKeyId, userName, count(DISTINCT sourceIpAddress) AS ips, count(*) AS calls FROM events "
        "WHERE accessKeyId <> '' GROUP BY accessKeyId, userName "
        "HAVING count(DISTINCT sourceIpAddress) > 3 ORDER BY ips DESC",
    ),
    Template(
        "preset-root-activity",
        "Root account activity",
        "SELECT eventTime, eventName, eventType, sourceIpAddress, errorCode FROM events "
        "WHERE userName = 'root' ORDER BY eventTimeMs DESC",
    ),
    Template(
        "preset-policy-changes",
        "Changes to policies",
        "SELECT eventTime, userName, eventName, resourceName, errorCode FROM events "
        "WHERE eventRW = 'Write' AND (eventName LIKE '%Policy%' OR eventName LIKE '%PolicyVersion%') "
        "ORDER BY eventTimeMs DESC",
    ),
)
_PRESETS = {t.template_id: t for t in PRESETS}
MAX_PER_ACCOUNT = 100


def _row(r: Any) -> Template:
    return Template(r.id, r.name, r.template_sql, bool(r.simple_query))


def listing(conn: Connection, account_id: str, name_filter: str | None) -> list[Template]:
    """The presets, then the account's own templates by name; `name_filter` keeps those whose name contains it
    (case-insensitively)."""
    own = conn.execute(
        select(query_templates).where(query_templates.c.account_id == account_id).order_by(query_templates.c.name)
    ).all()
    found = list(PRESETS) + [_row(r) for r in own]
    if name_filter:
        found = [t for t in found if name_filter.lower() in t.name.lower()]
    return found


def get(conn: Connection, account_id: str, template_id: str) -> Template:
    if template_id in _PRESETS:
        return _PRESETS[template_id]
    row = conn.execute(
        select(query_templates).where(query_templates.c.account_id == account_id, query_templates.c.id == template_id)
    ).first()
    if row is None:
        raise not_found("AdvancedQueryTemplate", template_id)
    return _row(row)


def _own(conn: Connection, account_id: str, template_id: str) -> Template:
    found = get(conn, account_id, template_id)
    if found.preset:
        raise ApiError(
            "Forbidden.PresetTemplate", f"The preset template {template_id} cannot be changed or deleted; copy it."
        )
    return found


def _name_free(conn: Connection, account_id: str, name: str, except_id: str = "") -> None:
    taken = conn.execute(
        select(query_templates.c.id).where(
            query_templates.c.account_id == account_id,
            query_templates.c.name == name,
            query_templates.c.id != except_id,
        )
    ).first()
    if taken is not None or any(t.name == name for t in PRESETS):
        raise already_exists("AdvancedQueryTemplate", name)


def create(conn: Connection, account_id: str, name: str | None, sql: str, simple: bool, now_ms: int) -> Template:
    template_id = "aqt-" + secrets.token_hex(12)
    name = name or template_id
    _name_free(conn, account_id, name)
    count = conn.execute(
        select(func.count()).select_from(query_templates).where(query_templates.c.account_id == account_id)
    ).scalar_one()
    if count >= MAX_PER_ACCOUNT:
        raise ApiError(
            "LimitExceeded.AdvancedQueryTemplate", f"An account keeps at most {MAX_PER_ACCOUNT} query templates."
        )
    conn.execute(
        query_templates.insert().values(
            id=template_id,
            account_id=account_id,
            name=name,
            template_sql=sql,
            simple_query=simple,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
    )
    return Template(template_id, name, sql, simple)


def update(
    conn: Connection, account_id: str, template_id: str, name: str | None, sql: str | None, simple: bool, now_ms: int
) -> Template:
    old = _own(conn, account_id, template_id)
    new = Template(template_id, name or old.name, sql or old.sql, simple)
    if new.name != old.name:
        _name_free(conn, account_id, new.name, template_id)
    conn.execute(
        query_templates.update()
        .where(query_templates.c.id == template_id)
        .values(name=new.name, template_sql=new.sql, simple_query=simple, updated_ms=now_ms)
    )
    return new


def delete(conn: Connection, account_id: str, template_id: str) -> None:
    _own(conn, account_id, template_id)
    conn.execute(query_templates.delete().where(query_templates.c.id == template_id))
