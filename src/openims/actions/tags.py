"""Tagging resources (RAM users, the one taggable type the SDK names): tag, untag, and list tags."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Row, and_, delete, or_, select, tuple_

from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.actions.tagging import MAX_TAGS, TAG_KEY, TAG_VALUE, has_all_tags, set_tags
from openims.actions.users import USER, find_user
from openims.errors import ApiError, invalid, missing
from openims.params import Bool, Int, ObjList, Str, StrList
from openims.store.schema import resource_tags, users

MAX_RESOURCES = 50
RESOURCE_TYPE = Str("ResourceType", choices=("user",), default="user")
RESOURCE_ID = StrList("ResourceId", max_items=MAX_RESOURCES, item=Str("item", min_len=1, max_len=64))
RESOURCE_NAME = StrList("ResourcePrincipalName", max_items=MAX_RESOURCES, item=Str("item", min_len=1, max_len=128))
FILTER_TAGS = ObjList("Tag", fields=(Str("Key", required=True, min_len=1, max_len=128), TAG_VALUE), max_items=MAX_TAGS)


def _resources(ctx: CallContext, p: dict[str, Any], required: bool = True) -> list[Row[Any]]:
    """The users named by ResourceId.N or ResourcePrincipalName.N (exactly one of the two), each referenced in the
    event."""
    ids_, names = p["ResourceId"], p["ResourcePrincipalName"]
    if ids_ and names:
        raise ApiError("InvalidParameter.ResourceId", "Specify either ResourceId or ResourcePrincipalName, not both.")
    if required and not (ids_ or names):
        raise missing("ResourceId")
    rows = [find_user(ctx, user_id=rid) for rid in ids_] + [find_user(ctx, upn=name) for name in names]
    return list({r.id: r for r in rows}.values())


@action(
    "TagResources",
    rw=WRITE,
    resource=(USER, None),
    params=(
        RESOURCE_TYPE,
        RESOURCE_ID,
        RESOURCE_NAME,
        ObjList("Tag", required=True, fields=(TAG_KEY, TAG_VALUE), max_items=MAX_TAGS),
    ),
)
def tag_resources(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add or overwrite tags on up to 50 users; a user carries at most 20 tags."""
    for row in _resources(ctx, p):
        set_tags(ctx.conn, ctx.account_id, "user", row.id, p["Tag"])
    return {}


@action(
    "UntagResources",
    rw=WRITE,
    resource=(USER, None),
    params=(
        RESOURCE_TYPE,
        RESOURCE_ID,
        RESOURCE_NAME,
        Bool("All", default=False),
        StrList("TagKey", max_items=MAX_TAGS, item=Str("item", min_len=1, max_len=128)),
    ),
)
def untag_resources(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove the given tag keys (or, with All=true and no TagKey, every tag) from up to 50 users."""
    if not p["TagKey"] and not p["All"]:
        raise missing("TagKey")
    for row in _resources(ctx, p):
        query = delete(resource_tags).where(
            resource_tags.c.resource_type == "user", resource_tags.c.resource_id == row.id
        )
        if p["TagKey"]:
            query = query.where(resource_tags.c.tag_key.in_(p["TagKey"]))
        ctx.conn.execute(query)
    return {}


def _token(resource_id: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{resource_id}\n{key}".encode()).decode()


def _untoken(token: str) -> tuple[str, str]:
    try:
        resource_id, key = base64.urlsafe_b64decode(token.encode()).decode().split("\n", 1)
        return resource_id, key
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "NextToken",
            "Format",
            'The parameter - "NextToken" is not valid: pass the NextToken of the previous page unchanged.',
        ) from None


@action(
    "ListTagResources",
    resource=(USER, None),
    params=(
        RESOURCE_TYPE,
        RESOURCE_ID,
        RESOURCE_NAME,
        FILTER_TAGS,
        Str("NextToken", max_len=1024),
        Int("PageSize", min=1, max=100, default=100),
    ),
)
def list_tag_resources(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The tags of the given users, or the tag pairs matching Tag.N on users carrying all of them (every user's
    tags when neither is given)."""
    # The outer rows come from an alias, so the tag filter's own subquery on resource_tags stays uncorrelated.
    pair = resource_tags.alias("pair")
    query = (
        select(pair.c.resource_id, pair.c.tag_key, pair.c.tag_value)
        .join(users, and_(users.c.id == pair.c.resource_id, pair.c.resource_type == "user"))
        .where(users.c.account_id == ctx.account_id, users.c.deleted_ms.is_(None))
    )
    named = _resources(ctx, p, required=False)
    if named:
        query = query.where(users.c.id.in_([r.id for r in named]))
    if p["Tag"]:
        query = query.where(
            has_all_tags("user", users.c.id, p["Tag"]),
            or_(
                *[
                    and_(pair.c.tag_key == t["Key"], *([pair.c.tag_value == t["Value"]] if t["Value"] else []))
                    for t in p["Tag"]
                ]
            ),
        )
    if p["NextToken"]:
        query = query.where(tuple_(pair.c.resource_id, pair.c.tag_key) > tuple_(*_untoken(p["NextToken"])))
    rows = ctx.conn.execute(query.order_by(pair.c.resource_id, pair.c.tag_key).limit(p["PageSize"] + 1)).all()
    truncated = len(rows) > p["PageSize"]
    rows = rows[: p["PageSize"]]
    out: dict[str, Any] = {
        "TagResources": {
            "TagResource": [
                {"ResourceType": "user", "ResourceId": r.resource_id, "TagKey": r.tag_key, "TagValue": r.tag_value}
                for r in rows
            ]
        },
        "IsTruncated": truncated,
    }
    if truncated:
        out["NextToken"] = _token(rows[-1].resource_id, rows[-1].tag_key)
    return out
