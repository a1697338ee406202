"""The ID token signing key: sealed at rest, rotated by age, retired keys published a while then purged; and
the claims each scope releases."""

from __future__ import annotations

import json

from sqlalchemy import select

from openims import clock
from openims.oauth import owners, signing_keys
from openims.runtime import Runtime
from openims.store.tables.oauth import oauth_signing_keys


def test_the_signing_key_rotates_and_retired_keys_stay_published_then_go(rt: Runtime) -> None:
    with rt.db.transaction() as conn:
        first = signing_keys.current(rt, conn)
        assert signing_keys.current(rt, conn).kid == first.kid  # one key until it is old
        stored = conn.execute(select(oauth_signing_keys)).one()
    # At rest: the private key only sealed; the published half has no private member.
    assert first.private_jwk["d"].encode() not in stored.private_sealed
    assert "d" not in json.loads(stored.public_jwk) and json.loads(stored.public_jwk)["kid"] == first.kid

    clock.set_offset((signing_keys.ROTATE_AFTER_MS + 1000) / 1000)
    with rt.db.transaction() as conn:
        second = signing_keys.current(rt, conn)
        assert second.kid != first.kid
        assert [k["kid"] for k in signing_keys.published(conn)] == [second.kid, first.kid]
    assert signing_keys.purge_retired(rt) == 0

    clock.set_offset((signing_keys.ROTATE_AFTER_MS + signing_keys.PUBLISHED_AFTER_RETIREMENT_MS + 2000) / 1000)
    with rt.db.read() as conn:
        assert [k["kid"] for k in signing_keys.published(conn)] == [second.kid]
    assert signing_keys.purge_retired(rt) == 1


def test_each_scope_releases_its_claims_only(rt: Runtime) -> None:
    user = owners.Owner("1000000000000001", "200000000000000101", "ann@x.onaliyun.com", "ann", "Ann")
    root = owners.Owner("1000000000000001", None, "root", "x", "x")
    assert set(owners.claims(rt, user, "openid")) == {"sub"}
    assert owners.claims(rt, user, "aliuid") == {"uid": user.user_id, "aid": user.account_id}
    assert owners.claims(rt, user, "profile") == {"name": "Ann", "upn": "ann@x.onaliyun.com", "login_name": "ann"}
    assert (
        "upn" not in owners.claims(rt, root, "profile") and owners.claims(rt, root, "aliuid")["uid"] == root.account_id
    )
    # `sub` is stable and opaque, and differs between the user and the account's root.
    assert owners.subject(rt, user) == owners.subject(rt, user) != owners.subject(rt, root)
    assert user.user_id not in owners.subject(rt, user)
