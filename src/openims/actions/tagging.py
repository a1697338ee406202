"""Tags on resources (users, and the other taggable types): storage, views and tag filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, exists, insert, select

from openims.params import ObjList, Str
from openims.store.prepared import Prepared
from openims.store.schema import resource_tags

MAX_TAGS = 20
# Required: a tag needs a key (the SDK: "You cannot specify empty strings as tag keys"). The reserved
# prefixes are refused in any letter case.
TAG_KEY = Str(
    "Key",
    required=True,
    min_len=1,
    max_len=128,
    pattern=r"(?!(?i:aliyun|acs:))[^<>]*",
    pattern_doc="must not start with aliyun or acs:",
)
TAG_VALUE = Str("Value", max_len=128)


def tag_param(name: str = "Tag") -> ObjList:
    return ObjList(name, fields=(TAG_KEY, TAG_VALUE), max_items=MAX_TAGS)


def set_tags(
    conn: Connection, account_id: str, resource_type: str, resource_id: str, tags: Iterable[dict[str, Any]]
) -> None:
    """Add or overwrite tags, keeping the per-resource limit."""
    tags = [tag for tag in tags if tag.get("Key")]
    if not tags:
        return
    _no_urls(tags)
    for tag in tags:
        conn.execute(
            delete(resource_tags).where(
                resource_tags.c.resource_type == resource_type,
                resource_tags.c.resource_id == resource_id,
                resource_tags.c.tag_key == tag["Key"],
            )
        )
        conn.execute(
            insert(resource_tags).values(
                account_id=account_id,
                resource_type=resource_type,
                resource_id=resource_id,
                tag_key=tag["Key"],
                tag_value=tag.get("Value") or "",
            )
        )
    count = len(
        conn.execute(
            select(resource_tags.c.tag_key).where(
                resource_tags.c.resource_type == resource_type, resource_tags.c.resource_id == resource_id
            )
        ).all()
    )
    if count > MAX_TAGS:
        from openims.errors import ApiError

        raise ApiError("LimitExceeded.Tag", f"A resource can have at most {MAX_TAGS} tags.")


def _no_urls(tags: list[dict[str, Any]]) -> None:
    """The SDK: tag keys and values cannot contain http:// or https://."""
    from openims.errors import invalid

    for field in ("Key", "Value"):
        for tag in tags:
            value = (tag.get(field) or "").lower()
            if "http://" in value or "https://" in value:
                raise invalid(
                    f"Tag.{field}", "InvalidChars", f'The parameter - "Tag.{field}" cannot contain http:// or https://.'
                )


_TAGS_OF = (
    select(resource_tags)
    .where(
        resource_tags.c.resource_type == bindparam("type"),
        resource_tags.c.resource_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(resource_tags.c.tag_key)
)
# One resource's, as every Get* reads them: a fixed statement, so it can run prepared (store/prepared.py).
_TAGS_OF_ONE = Prepared(
    select(resource_tags)
    .where(resource_tags.c.resource_type == bindparam("type"), resource_tags.c.resource_id == bindparam("id"))
    .order_by(resource_tags.c.tag_key)
)


def tags_of(conn: Connection, resource_type: str, resource_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """Tags per resource ID, in the SDK's `{"TagKey", "TagValue"}` shape."""
    out: dict[str, list[dict[str, str]]] = {rid: [] for rid in resource_ids}
    if not resource_ids:
        return out
    if len(resource_ids) == 1:
        rows = _TAGS_OF_ONE.all(conn, {"type": resource_type, "id": resource_ids[0]})
    else:
        rows = list(conn.execute(_TAGS_OF, {"type": resource_type, "ids": list(resource_ids)}))
    for row in rows:
        out[row.resource_id].append({"TagKey": row.tag_key, "TagValue": row.tag_value})
    return out


def has_all_tags(resource_type: str, id_column: Any, tags: list[dict[str, Any]]) -> ColumnElement[bool]:
    """A WHERE clause: the resource carries every given tag (a tag without a Value matches any value)."""
    clauses = []
    for tag in tags:
        cond = [
            resource_tags.c.resource_type == resource_type,
            resource_tags.c.resource_id == id_column,
            resource_tags.c.tag_key == tag["Key"],
        ]
        if tag.get("Value"):
            cond.append(resource_tags.c.tag_value == tag["Value"])
        clauses.append(exists().where(*cond))
    return and_(*clauses)
