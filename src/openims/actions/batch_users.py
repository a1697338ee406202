"""BatchCreateUser (no SDK method; OpenIMS defines its shape by analogy with CreateUser): many users in one
call, all or none, with one event naming every user."""

from __future__ import annotations

from typing import Any

from openims.actions.context import CallContext
from openims.actions.registry import WRITE, Created, action
from openims.actions.users import CREATE_USER_PARAMS, USER, insert_user
from openims.errors import ApiError
from openims.params import ObjList, Str, parse_all

MAX_USERS = 100
# CreateUser's fields and limits, except tags (a flattened list cannot nest another list).
USER_FIELDS = tuple(p for p in CREATE_USER_PARAMS if isinstance(p, Str))
USERS = ObjList(
    "User",
    required=True,
    max_items=MAX_USERS,
    fields=tuple(Str(f.name) for f in USER_FIELDS),
    doc="User.N.UserPrincipalName, User.N.DisplayName, User.N.Email, User.N.MobilePhone, User.N.Comments",
)


def _in_item(position: int, err: ApiError) -> ApiError:
    """The same error, saying which user of the batch it is about."""
    return ApiError(err.code, f"User {position} of the batch: {err.message}", err.status, **err.extra)


@action(
    "BatchCreateUser",
    rw=WRITE,
    params=(USERS,),
    resource=(USER, None),
    extension=True,
    resources=((USER, Created("Users.User[].UserPrincipalName")),),
)
def batch_create_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create up to 100 RAM users at once, each as CreateUser would (without tags). If any one is invalid or
    already exists, none is created."""
    created = []
    for position, item in enumerate(p["User"], 1):
        try:
            fields = parse_all(USER_FIELDS, {k: v for k, v in item.items() if v is not None})
            created.append(insert_user(ctx, fields))
        except ApiError as err:
            raise _in_item(position, err) from None
        ctx.reference(USER, fields["UserPrincipalName"])
    return {"Users": {"User": created}}
