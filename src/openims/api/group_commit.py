"""Group commit, for calls that run on the event loop (SQLite).

A SQLite commit costs about as much as the rest of a call: every page the call changed (the event row and its
indexes, the rows it wrote) is written to the WAL, and calls that arrive together change the same pages. The calls
whose requests arrived in one turn of the event loop each leave their transactional work (dispatch.Pending: a
read's event and nonce, a write from its authentication on) with `commit` and wait; at the end of that turn one
transaction runs them all, in order, and only then does each call answer, so the guarantee is the same as with a
commit per call: an answered call's change and event are durable. Each call's work runs in a savepoint of its
own, so a call that fails (a replayed nonce, a handler's error) rolls back alone, as its own transaction would,
and the calls after it see the state it left; a failure of the transaction fails every call in it, and each call
then records its failure as it would have alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from openims.ops import event_counts
from openims.store.db import Database

Work = Callable[[Connection], dict[str, Any]]


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[Work, asyncio.Future[dict[str, Any]]]] = []

    async def commit(self, work: Work) -> dict[str, Any]:
        """Run `work` in the next group transaction; returns its answer once that committed, or raises what
        failed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting.append((work, done))
        if len(self._waiting) == 1:
            # After the callbacks already due: the other requests read in this turn join the group first.
            loop.call_soon(self._flush)
        return await done

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        answers: list[dict[str, Any] | Exception] = []
        try:
            with self._db.transaction() as conn:
                if len(group) == 1:
                    answers.append(group[0][0](conn))
                else:
                    answers.extend(_in_savepoint(conn, work) for work, _ in group)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting call, which audits and answers it
            if len(group) > 1:
                # A call after the first may have cached what it read under an authz_version that never committed.
                self._db.epoch += 1
            for _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        for answer, (_, done) in zip(answers, group, strict=True):
            if done.done():  # the call's task was cancelled (its client left); what it did is stored all the same
                continue
            if isinstance(answer, Exception):
                done.set_exception(answer)
            else:
                done.set_result(answer)


def _in_savepoint(conn: Connection, work: Work) -> dict[str, Any] | Exception:
    """Run one call's `work` in a savepoint (raw: SAVEPOINT through Core costs more than the rows): its answer,
    or, rolled back to the savepoint with the events it had counted forgotten, its error."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    pending = conn.info.get(event_counts.PENDING)
    counted = len(pending) if pending is not None else 0
    raw.execute("SAVEPOINT call")
    try:
        answer = work(conn)
    except Exception as exc:  # noqa: BLE001 - this call's failure alone; the others in the group still commit
        raw.execute("ROLLBACK TO call")
        raw.execute("RELEASE call")
        if pending is not None:
            del pending[counted:]
        return exc
    raw.execute("RELEASE call")
    return answer
