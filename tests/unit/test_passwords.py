"""Password rules: each policy field refuses what it should with an error naming the rule (never the
password), the reuse history keeps only the last N hashes, and expiry follows the policy's ages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select

from openims import accounts, config
from openims.clock import DAY_MS
from openims.credentials import passwords
from openims.credentials.passwords import PasswordPolicy
from openims.errors import ApiError
from openims.runtime import Runtime, open_runtime
from openims.store.schema import users
from openims.store.tables.credentials import password_history


def refused(policy: PasswordPolicy, password: str, user: str = "alice", param: str = "Password") -> ApiError:
    with pytest.raises(ApiError) as info:
        passwords.check_strength(policy, password, user, param)
    assert password not in info.value.message
    assert info.value.status == 400
    return info.value


def test_defaults_are_alibabas() -> None:
    assert PasswordPolicy().view() == {
        "MinimumPasswordLength": 8,
        "RequireLowercaseCharacters": False,
        "RequireUppercaseCharacters": False,
        "RequireNumbers": False,
        "RequireSymbols": False,
        "PasswordReusePrevention": 0,
        "MaxPasswordAge": 0,
        "HardExpire": False,
        "MaxLoginAttemps": 0,
        "PasswordNotContainUserName": False,
        "MinimumPasswordDifferentCharacter": 0,
        "InitialPasswordAge": 14,
        "InterceptRiskPasswordOnApi": False,
    }


def test_each_rule_names_itself() -> None:
    strict = PasswordPolicy(
        minimum_password_length=12,
        require_lowercase_characters=True,
        require_uppercase_characters=True,
        require_numbers=True,
        require_symbols=True,
        password_not_contain_user_name=True,
        minimum_password_different_character=8,
        intercept_risk_password_on_api=True,
    )
    assert refused(strict, "Sh0rt!pw").code == "InvalidParameter.Password.Length"
    assert refused(strict, "x" * 33 + "Aa1!").code == "InvalidParameter.Password.Length"
    assert refused(strict, "NOLOWERCASE123!").code == "InvalidParameter.Password.Lowercase"
    err = refused(strict, "nouppercase123!")
    assert err.code == "InvalidParameter.Password.Uppercase" and "at least one uppercase letter" in err.message
    assert refused(strict, "NoNumbersHere!!").code == "InvalidParameter.Password.Numbers"
    assert refused(strict, "NoSymbolsHere12").code == "InvalidParameter.Password.Symbols"
    assert refused(strict, "Aa1!Aa1!Aa1!Aa1!").code == "InvalidParameter.Password.DifferentCharacters"
    assert refused(strict, "xALICEx-Pw-2931").code == "InvalidParameter.Password.ContainsUserName"
    assert refused(strict, "Password123456!").code == "InvalidParameter.Password.Risky"
    assert refused(strict, "Pässwörd-Üml4ut").code == "InvalidParameter.Password.InvalidChars"
    err = refused(strict, "short", param="NewPassword")
    assert err.code == "InvalidParameter.NewPassword.Length" and "12 to 32" in err.message
    passwords.check_strength(strict, "Tr1cky-Horse-Battery", "alice")


def test_rules_off_by_default() -> None:
    passwords.check_strength(PasswordPolicy(), "aaaaaaaa", "aaaa")
    passwords.check_strength(PasswordPolicy(), "alice-was-here", "alice")
    assert refused(PasswordPolicy(), "seven77").code == "InvalidParameter.Password.Length"


def test_risky_passwords() -> None:
    for weak in ("password", "Password1!", "P@ssw0rd2024", "12345678", "!@#$%^&*", "Aliyun@123", "qwerty123"):
        assert passwords.is_risky(weak), weak
    for fine in ("Tr1cky-Horse-Battery", "mauve-otter-41", "xk#9Lq2!vB"):
        assert not passwords.is_risky(fine), fine


def test_expiry_and_initial_password_status() -> None:
    policy = PasswordPolicy(max_password_age=30, initial_password_age=7)
    set_at = 1_000 * DAY_MS
    assert not passwords.is_expired(policy, set_at, set_at + 30 * DAY_MS - 1)
    assert passwords.is_expired(policy, set_at, set_at + 30 * DAY_MS)
    assert not passwords.is_expired(PasswordPolicy(), set_at, set_at + 10_000 * DAY_MS)
    assert passwords.password_status(policy, False, set_at, set_at + 99 * DAY_MS) == "NotInitial"
    assert passwords.password_status(policy, True, set_at, set_at + 6 * DAY_MS) == "InitialValid"
    assert passwords.password_status(policy, True, set_at, set_at + 7 * DAY_MS) == "InitialExpired"
    assert (
        passwords.password_status(PasswordPolicy(initial_password_age=0), True, set_at, set_at + 999 * DAY_MS)
        == "InitialValid"
    )


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(
        config.Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}"), create=True
    )
    yield runtime
    runtime.close()


def test_history_keeps_only_the_last_n_hashes(rt: Runtime) -> None:
    acct = accounts.create_account(rt, "pw-history")
    user = SimpleNamespace(id="2000000000000000001", name="bob")
    with rt.db.transaction() as conn:
        conn.execute(
            insert(users).values(
                id=user.id,
                account_id=acct.account_id,
                name="bob",
                upn="bob@x",
                display_name="Bob",
                created_ms=1,
                updated_ms=1,
            )
        )
        policy = passwords.save_policy(conn, acct.account_id, {"password_reuse_prevention": 3}, 1)
        assert passwords.load_policy(conn, acct.account_id) == policy
        for i in range(5):
            stored = passwords.new_password_hash(conn, policy, user, f"secret-number-{i}", 10 + i)
            assert stored.startswith("$argon2id$")
        hashes = (
            conn.execute(select(password_history.c.password_hash).where(password_history.c.user_id == user.id))
            .scalars()
            .all()
        )
        assert len(hashes) == 3 and not any("secret-number" in h for h in hashes)
        for recent in (2, 3, 4):
            with pytest.raises(ApiError) as info:
                passwords.new_password_hash(conn, policy, user, f"secret-number-{recent}", 20)
            assert info.value.code == "InvalidParameter.Password.Reused" and "secret-number" not in info.value.message
        # older than the last three: allowed again
        passwords.new_password_hash(conn, policy, user, "secret-number-1", 21)
        # with reuse prevention off, nothing is kept
        off = passwords.save_policy(conn, acct.account_id, {"password_reuse_prevention": 0}, 2)
        assert off.minimum_password_length == 8 and off.password_reuse_prevention == 0
        passwords.new_password_hash(conn, off, user, "secret-number-1", 22)
        assert conn.execute(select(password_history).where(password_history.c.user_id == user.id)).all() == []
