"""The one error type every layer raises, rendered as Alibaba's error envelope by the protocol layer."""

from __future__ import annotations

import re
from typing import Any


def _status_for(code: str) -> int:
    """HTTP status by Alibaba's code families, so call sites name only the code."""
    if code.startswith("EntityNotExist") or code in ("InvalidAction.NotFound", "InvalidVersion"):
        return 404
    if code.startswith(("EntityAlreadyExists", "DeleteConflict", "LimitExceeded", "Conflict")):
        return 409
    if code.startswith(("NoPermission", "Forbidden", "InvalidAccessKeyId.Inactive")):
        return 403
    if code.startswith(("InternalError", "ServiceUnavailable")):
        return 500 if code.startswith("InternalError") else 503
    return 400


class ApiError(Exception):
    """An error returned to the caller as `{RequestId, HostId, Code, Message, Recommend}`."""

    def __init__(self, code: str, message: str, status: int | None = None, for_caller: str = "", **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else _status_for(code)
        # Appended to Message in the response only, never in the event or a log line: what the caller sent
        # and needs to see (a signature's string to sign), which the audit trail has no business keeping.
        self.for_caller = for_caller
        # Set by the dispatcher: the resources the failed call had named, for its event.
        self.resources: list[tuple[str, str]] = []
        self.extra = extra


def storage_unavailable() -> ApiError:
    """What the caller gets while the database cannot store anything (a full or read-only disk)."""
    return ApiError(
        "ServiceUnavailable",
        "The service cannot store data right now (its storage is full or read-only); try again later.",
        503,
    )


def internal_error() -> ApiError:
    """What the caller of a call that failed on our side gets (the details stay in the log)."""
    return ApiError("InternalError", "The request processing has failed due to some unknown error.", 500)


def missing(name: str) -> ApiError:
    """Alibaba's common code for an absent mandatory parameter; the message names it. Parameter validation
    and the actions' own checks (a parameter required only in some cases) both use it."""
    return ApiError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def invalid(name: str, reason: str, message: str) -> ApiError:
    return ApiError(f"InvalidParameter.{name}.{reason}", message)


# Product terms Alibaba writes as one word.
KEEP_AS_IS = frozenset({"AccessKey"})


def describe(entity: str) -> str:
    """An error code's entity in words: `VirtualMFADevice` -> "virtual MFA device", `User.LoginProfile` ->
    "login profile of the user"."""

    def words(part: str) -> str:
        if part in KEEP_AS_IS:
            return part
        found = re.findall(r"[A-Z]{2,}(?=[A-Z][a-z]|$)|[A-Z][a-z]+|[A-Z]|[a-z]+|\d+", part)
        return " ".join(w if len(w) > 1 and w.isupper() else w.lower() for w in found)

    *owners, last = entity.split(".")
    return " of the ".join([words(last), *(words(o) for o in reversed(owners))])


def not_found(entity: str, name: str) -> ApiError:
    return ApiError(f"EntityNotExist.{entity}", f"The {describe(entity)} does not exist: {name}.")


def already_exists(entity: str, name: str) -> ApiError:
    return ApiError(f"EntityAlreadyExists.{entity}", f"The {describe(entity)} already exists: {name}.")


def no_permission(message: str = "You are not authorized to do this action.", **detail: Any) -> ApiError:
    extra: dict[str, Any] = {"AccessDeniedDetail": detail} if detail else {}
    return ApiError("NoPermission", message, **extra)
