"""Maps a violated schema constraint to the API error it means, so concurrent writers that slip past a
handler's existence check still get the right `EntityAlreadyExists` instead of a 500."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from openims.errors import ApiError

# constraint or index name -> (code, message); families add theirs with `register`.
_BY_NAME: dict[str, tuple[str, str]] = {
    "uq_users_account_name": ("EntityAlreadyExists.User", "The user already exists."),
    "uq_groups_account_name": ("EntityAlreadyExists.Group", "The group already exists."),
    "pk_group_members": ("EntityAlreadyExists.User.Group", "The user is already in the group."),
}
# SQLite names columns, not constraints, in its messages: "UNIQUE constraint failed: users.account_id, users.name",
# except for an expression index, which it names: "UNIQUE constraint failed: index 'uq_users_account_name'".
_SQLITE_COLUMNS: dict[str, str] = {
    "groups.account_id, groups.name": "uq_groups_account_name",
    "group_members.group_id, group_members.user_id": "pk_group_members",
}


def register(name: str, code: str, message: str, sqlite_columns: str | None = None) -> None:
    _BY_NAME[name] = (code, message)
    if sqlite_columns:
        _SQLITE_COLUMNS[sqlite_columns] = name


def to_api_error(exc: IntegrityError) -> ApiError:
    text = str(exc.orig)
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if name is None and "constraint failed:" in text:
        failed = text.split("constraint failed:", 1)[1].strip().splitlines()[0]
        name = failed[len("index '") : -1] if failed.startswith("index '") else _SQLITE_COLUMNS.get(failed)
    if name in _BY_NAME:
        code, message = _BY_NAME[name]
        return ApiError(code, message)
    return ApiError("Conflict", "The request conflicts with the current state of the resource; retry it.", 409)
