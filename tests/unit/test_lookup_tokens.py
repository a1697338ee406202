"""NextTokens are opaque, signed, and bound to the query that produced them."""

from __future__ import annotations

import pytest

from openims.audit.lookup import Query, make_token, open_token
from openims.crypto import MasterKey
from openims.errors import ApiError


def test_token_roundtrip_and_binding() -> None:
    key = MasterKey(b"k" * 32)
    q = Query("1000000000000001", 0, 10, (("EventName", "CreateUser"),))
    token = make_token(key, q, 123, 45)
    assert open_token(key, token, q) == (123, 45)
    for other in (
        Query("1000000000000002", 0, 10, (("EventName", "CreateUser"),)),
        Query("1000000000000001", 0, 10, (("EventName", "DeleteUser"),)),
        Query("1000000000000001", 0, 10, (("EventName", "CreateUser"),), forward=True),
    ):
        with pytest.raises(ApiError):
            open_token(key, token, other)
    with pytest.raises(ApiError):
        open_token(MasterKey(b"j" * 32), token, q)
    for garbage in ("", "abc", "!!!!", token[:-2]):
        with pytest.raises(ApiError):
            open_token(key, garbage, q)
