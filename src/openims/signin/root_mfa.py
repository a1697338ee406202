"""The root identity's virtual MFA: one TOTP seed per account, set and removed on the server by the operator
(`openims account set-mfa` / `unset-mfa`, like the root console password) and asked for by root console
sign-in after the password.

The seed lives on the account's `accounts` row, sealed with the master key (context `acs:ram::<id>:root/mfa`,
so a sealed seed copied to another row does not open). The TOTP itself is `openims.credentials.totp`, as for RAM users'
devices, and binding is proven the way BindMFADevice proves it (`actions.mfa.binding_step`). A code is
accepted only for a time step later than the last one accepted; the last step moves with a conditional
UPDATE, so of two concurrent sign-ins with one code only one succeeds.

Each set or unset, and each refused attempt at one, is an event in the account (`SetAccountMFA`,
`UnsetAccountMFA`): the root identity, eventType `ApiCall`, userAgent `openims-cli` and source `localhost`,
as the trail commands record theirs. No seed or code is ever in an event or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Row, or_, select, update

from openims import accounts, clock
from openims.actions.mfa import ISSUER, binding_step, root_has_mfa
from openims.audit import outside_api
from openims.config import ConfigError
from openims.credentials import totp
from openims.crypto import MasterKey
from openims.errors import ApiError, already_exists, not_found
from openims.runtime import Runtime
from openims.store.schema import accounts as accounts_table

SET_EVENT = "SetAccountMFA"
UNSET_EVENT = "UnsetAccountMFA"
ENTITY = "Account.MFADevice"


@dataclass(frozen=True)
class Enrollment:
    """A new seed for an account's root, not stored until two of its codes prove it was set up."""

    account_id: str
    alias: str
    seed: str

    @property
    def uri(self) -> str:
        """The `otpauth://totp/OpenIMS:root@<alias>?...` URI an authenticator app scans."""
        return totp.provisioning_uri(self.seed, f"root@{self.alias}", ISSUER)

    def qr_png(self) -> bytes:
        return totp.qr_png(self.uri)


def _context(account_id: str) -> str:
    return f"acs:ram::{account_id}:root/mfa"


def start(rt: Runtime, ref: str | None) -> Enrollment:
    """A fresh seed for the root of the account named by ID or alias (None: the first account). Refused, and
    audited, when the root has MFA already: remove it first."""
    with rt.db.read() as conn:
        acct = accounts.named(conn, ref)
    if root_has_mfa(acct):
        _refused(rt, acct.id, SET_EVENT, already_exists(ENTITY, acct.id))
    return Enrollment(acct.id, acct.alias, totp.new_seed())


def bind(rt: Runtime, enrollment: Enrollment, code1: str, code2: str) -> None:
    """Store the seed, sealed, if `code1` and `code2` are two consecutive current codes of it (else raise the
    BindMFADevice error); records the event either way."""
    account_id = enrollment.account_id
    try:
        with rt.db.transaction() as conn:
            acct = conn.execute(
                select(accounts_table).where(accounts_table.c.id == account_id).with_for_update()
            ).first()
            if acct is None:
                raise ConfigError(f"the account {account_id} no longer exists")
            if root_has_mfa(acct):
                raise already_exists(ENTITY, account_id)
            step = binding_step(enrollment.seed, code1, code2, None)
            conn.execute(
                update(accounts_table)
                .where(accounts_table.c.id == account_id)
                .values(
                    mfa_seed_sealed=rt.master_key.seal(enrollment.seed, _context(account_id)),
                    mfa_bound_ms=clock.now_ms(),
                    mfa_last_step=step,
                )
            )
            outside_api.operator_event(rt, conn, account_id, SET_EVENT)
    except ApiError as err:
        _refused(rt, account_id, SET_EVENT, err)


def unbind(rt: Runtime, ref: str | None) -> str:
    """Remove the root's MFA of the account named by ID or alias (None: the first account); returns its ID."""
    with rt.db.transaction() as conn:
        acct = accounts.named(conn, ref)
        removed = conn.execute(
            update(accounts_table)
            .where(accounts_table.c.id == acct.id, accounts_table.c.mfa_seed_sealed.is_not(None))
            .values(mfa_seed_sealed=None, mfa_bound_ms=None, mfa_last_step=None)
        ).rowcount
        if removed:
            outside_api.operator_event(rt, conn, acct.id, UNSET_EVENT)
            return str(acct.id)
    _refused(rt, acct.id, UNSET_EVENT, not_found(ENTITY, acct.id))


def check_code(conn: Connection, master_key: MasterKey, acct: Row[Any], code: str) -> totp.Verdict:
    """Verify a code of the root's MFA at sign-in; an accepted code's step becomes the last one, so neither
    it nor an earlier code is accepted again."""
    seed = master_key.open(acct.mfa_seed_sealed, _context(acct.id))
    verdict, step = totp.verify(seed, code, acct.mfa_last_step)
    if verdict is not totp.Verdict.ACCEPTED:
        return verdict
    moved = conn.execute(
        update(accounts_table)
        .where(
            accounts_table.c.id == acct.id,
            accounts_table.c.mfa_seed_sealed.is_not(None),
            or_(accounts_table.c.mfa_last_step.is_(None), accounts_table.c.mfa_last_step < step),
        )
        .values(mfa_last_step=step)
    ).rowcount
    # Another sign-in took this step (or a later one) since the row was read: this code is spent.
    return verdict if moved == 1 else totp.Verdict.REUSED


def _refused(rt: Runtime, account_id: str, name: str, err: ApiError) -> NoReturn:
    """Record a refused set or unset in a transaction of its own, then raise the error."""
    with rt.db.transaction() as conn:
        outside_api.operator_event(rt, conn, account_id, name, err)
    raise err
