"""The database bumps an account's authz_version on every change to what authorizes its calls (which
policies apply to its users, its AccessKey network policies), on SQLite and PostgreSQL: the caches of
authz/decide.py and credentials/network_policy.py rely on nothing else."""

from __future__ import annotations

import os

from sqlalchemy import Connection, delete, insert, select, update

from openims import accounts
from openims.runtime import Runtime
from openims.store.schema import accounts as accounts_table
from openims.store.schema import group_members, groups, users
from openims.store.tables.keys import access_key_policies
from openims.store.tables.policies import group_policies, policies, policy_versions, user_policies


def versions(rt: Runtime, *account_ids: str) -> list[int]:
    with rt.db.read() as conn:
        found = dict(
            conn.execute(
                select(accounts_table.c.id, accounts_table.c.authz_version).where(accounts_table.c.id.in_(account_ids))
            ).all()
        )
    return [found[a] for a in account_ids]


def populate(conn: Connection, account: str, tag: str) -> None:
    for table, row_id in ((users, "u" + tag), (groups, "g" + tag)):
        extra = {"upn": f"{row_id}@x", "display_name": row_id} if table is users else {}
        conn.execute(
            insert(table).values(id=row_id, account_id=account, name=row_id, created_ms=1, updated_ms=1, **extra)
        )
    conn.execute(
        insert(policies).values(
            id="p" + tag,
            account_id=account,
            name="p" + tag,
            default_version="v1",
            next_version=3,
            created_ms=1,
            updated_ms=1,
        )
    )
    for version in ("v1", "v2"):
        conn.execute(
            insert(policy_versions).values(
                policy_id="p" + tag, version_id=version, number=int(version[1]), document="{}", created_ms=1
            )
        )


def test_every_change_to_policies_in_force_bumps_only_its_account(rt: Runtime) -> None:
    mine, other = (accounts.create_account(rt, "a" + os.urandom(5).hex()).account_id for _ in range(2))
    with rt.db.transaction() as conn:
        populate(conn, mine, "1")
        populate(conn, other, "2")
    start = versions(rt, mine, other)

    def bumps(change) -> int:  # type: ignore[no-untyped-def]
        before = versions(rt, mine, other)
        with rt.db.transaction() as conn:
            change(conn)
        after = versions(rt, mine, other)
        assert after[1] == before[1], "another account's version moved"
        return after[0] - before[0]

    attach = {"policy_type": "Custom", "policy_name": "p1", "policy_id": "p1", "account_id": mine, "attached_ms": 1}
    assert bumps(lambda c: c.execute(insert(user_policies).values(user_id="u1", **attach))) == 1
    assert bumps(lambda c: c.execute(insert(group_policies).values(group_id="g1", **attach))) == 1
    assert bumps(lambda c: c.execute(insert(group_members).values(group_id="g1", user_id="u1", joined_ms=1))) == 1
    assert bumps(lambda c: c.execute(update(policies).where(policies.c.id == "p1").values(default_version="v2"))) == 1
    # Not a change to what applies: the same default version, or another column.
    assert bumps(lambda c: c.execute(update(policies).where(policies.c.id == "p1").values(default_version="v2"))) == 0
    assert bumps(lambda c: c.execute(update(policies).where(policies.c.id == "p1").values(description="d"))) == 0
    assert bumps(lambda c: c.execute(update(users).where(users.c.id == "u1").values(display_name="x"))) == 0
    assert bumps(lambda c: c.execute(delete(group_members).where(group_members.c.user_id == "u1"))) == 1
    assert bumps(lambda c: c.execute(delete(user_policies).where(user_policies.c.user_id == "u1"))) == 1
    assert bumps(lambda c: c.execute(delete(group_policies).where(group_policies.c.group_id == "g1"))) == 1
    network = {"id": f"account:{mine}", "account_id": mine, "document": "{}", "updated_ms": 1}
    assert bumps(lambda c: c.execute(insert(access_key_policies).values(**network))) == 1
    assert bumps(lambda c: c.execute(update(access_key_policies).values(document="[]"))) == 1
    assert bumps(lambda c: c.execute(delete(access_key_policies))) == 1

    # Rows removed by a cascade count too: a user deleted for good takes its memberships and attachments,
    # a deleted group its members.
    with rt.db.transaction() as conn:
        conn.execute(insert(group_members).values(group_id="g1", user_id="u1", joined_ms=1))
        conn.execute(insert(user_policies).values(user_id="u1", **attach))
    assert bumps(lambda c: c.execute(delete(users).where(users.c.id == "u1"))) == 2
    with rt.db.transaction() as conn:
        populate(conn, mine, "3")
        conn.execute(insert(group_members).values(group_id="g1", user_id="u3", joined_ms=1))
    assert bumps(lambda c: c.execute(delete(groups).where(groups.c.id == "g1"))) == 1
    assert versions(rt, other) == [start[1]]
