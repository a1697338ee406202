"""Every parameter of every action, fed hostile values by a caller with a valid key: no answer is a 500, and
every call leaves exactly one event (none unaudited, none twice), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import logging

import httpx
from sqlalchemy import func, select

from openims.actions.table import ACTIONS
from openims.store.schema import events
from tests.signer import v2_params
from tests.support import Account

log = logging.getLogger(__name__)

HOSTILE = (
    "\x00",
    "admin\x00@x",
    "x" * 5000,
    "１２３",  # full-width digits
    "-1",
    "99999999999999999999999",
    "'; DROP TABLE users; --",
    "<x>&amp;</x>",
    "\u202eevil",
    "😀",
    "{",
    " ",
    "../../etc/passwd",
    "%00",
)


def _event_count(acct: Account) -> int:
    with acct.server.runtime.db.read() as conn:
        where = events.c.account_id == acct.account_id
        return int(conn.execute(select(func.count()).select_from(events).where(where)).scalar_one())


def test_hostile_values_in_every_parameter_of_every_action(acct: Account) -> None:
    sent, server_errors, bodies_not_json = 0, [], []
    before = _event_count(acct)
    with httpx.Client(base_url=acct.server.url, timeout=60) as client:
        for action in ACTIONS.all():
            for param in action.params:
                for value in HOSTILE:
                    form = v2_params(
                        acct.key_id, acct.secret, action.name, {param.name: value}, version=action.service.version
                    )
                    response = client.post("/", data=form)
                    sent += 1
                    if response.status_code >= 500:
                        server_errors.append((action.name, param.name, value[:20], response.text[:200]))
                    try:
                        json.loads(response.text)
                    except ValueError:
                        bodies_not_json.append((action.name, param.name, value[:20]))
    audited = _event_count(acct) - before
    log.warning("hostile run: %d calls, %d answered 5xx, %d events written", sent, len(server_errors), audited)
    assert sent > 2000
    assert server_errors == []
    assert bodies_not_json == []
    assert audited == sent
