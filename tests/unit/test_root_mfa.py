"""`openims.signin.root_mfa` on SQLite and PostgreSQL: binding proven by two codes, the seed sealed to its row, and
a code accepted once even when two sign-ins read the row before either wrote it."""

from __future__ import annotations

import pyotp
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from openims import accounts, ids
from openims.actions.mfa import root_has_mfa
from openims.credentials import totp
from openims.errors import ApiError
from openims.runtime import Runtime
from openims.signin import root_mfa
from openims.store.schema import accounts as accounts_table


def _row(rt: Runtime, account_id: str):  # type: ignore[no-untyped-def]
    with rt.db.read() as conn:
        return conn.execute(select(accounts_table).where(accounts_table.c.id == account_id)).one()


def test_bind_then_each_code_works_once_even_under_a_race(rt: Runtime) -> None:
    new = accounts.create_account(rt, "rootmfa-" + ids.request_id()[:6].lower())
    enrollment = root_mfa.start(rt, new.alias)
    seed, step = enrollment.seed, totp.current_step()
    otp = pyotp.TOTP(seed)
    with pytest.raises(ApiError) as refused:
        root_mfa.bind(rt, enrollment, otp.generate_otp(step), otp.generate_otp(step - 1))  # not in order
    assert refused.value.code == "InvalidParameter.AuthenticationCode.Mismatch"
    assert _row(rt, new.account_id).mfa_seed_sealed is None
    root_mfa.bind(rt, enrollment, otp.generate_otp(step - 1), otp.generate_otp(step))
    row = _row(rt, new.account_id)
    assert root_has_mfa(row) and row.mfa_last_step == step
    # Sealed to this account's row: under another account's context it does not open.
    with pytest.raises(InvalidTag):
        rt.master_key.open(row.mfa_seed_sealed, f"acs:ram::{new.account_id[::-1]}:root/mfa")

    # Two sign-ins read the row (last step `step`), then both present the next code: only one succeeds.
    fresh = otp.generate_otp(step + 1)
    with rt.db.transaction() as conn:
        assert root_mfa.check_code(conn, rt.master_key, row, fresh) is totp.Verdict.ACCEPTED
    with rt.db.transaction() as conn:
        assert root_mfa.check_code(conn, rt.master_key, row, fresh) is totp.Verdict.REUSED
    # Read again, the row says so itself; a wrong code is just wrong.
    row = _row(rt, new.account_id)
    assert row.mfa_last_step == step + 1
    with rt.db.transaction() as conn:
        assert root_mfa.check_code(conn, rt.master_key, row, fresh) is totp.Verdict.REUSED
        assert root_mfa.check_code(conn, rt.master_key, row, "12345") is totp.Verdict.WRONG

    assert root_mfa.unbind(rt, new.account_id) == new.account_id
    row = _row(rt, new.account_id)
    assert (row.mfa_seed_sealed, row.mfa_bound_ms, row.mfa_last_step) == (None, None, None)
