"""Group commit of read calls' events, for calls that run on the event loop (SQLite).

A read changes nothing but its event and nonce, and a SQLite commit costs about as much as the rest of the call
(the event row and its indexes written to the WAL). The read calls whose requests arrived in one turn of the event
loop each leave their event with `commit` and wait; at the end of that turn one transaction records them all and
only then does each call answer, so the guarantee is the same as with a commit per call: an answered call's event
is durable. Each call's rows go in a savepoint of their own, so one call's failure (a replayed nonce) rolls back
that call alone; a failure of the transaction fails every call in it, and each call then records its failure as
it would have alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Connection

from openims.ops import event_counts
from openims.store.db import Database

Write = Callable[[Connection], None]


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[Write, asyncio.Future[None]]] = []

    async def commit(self, write: Write) -> None:
        """Run `write` in the next group transaction; returns once that committed, or raises what failed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((write, done))
        if len(self._waiting) == 1:
            # After the callbacks already due: the other requests read in this turn join the group first.
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        failed: dict[int, Exception] = {}
        try:
            with self._db.transaction() as conn:
                if len(group) == 1:
                    group[0][0](conn)
                else:
                    for i, (write, _) in enumerate(group):
                        error = _in_savepoint(conn, write)
                        if error is not None:
                            failed[i] = error
        except Exception as exc:  # noqa: BLE001 - handed to every waiting call, which audits and answers it
            for _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        for i, (_, done) in enumerate(group):
            if done.done():  # the call's task was cancelled (its client left); its event is stored all the same
                continue
            if i in failed:
                done.set_exception(failed[i])
            else:
                done.set_result(None)


def _in_savepoint(conn: Connection, write: Write) -> Exception | None:
    """Run one call's `write` in a savepoint (raw: SAVEPOINT through Core costs more than the rows); on failure
    roll back to it, and forget the events it had counted, and return the error."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    pending = conn.info.get(event_counts.PENDING)
    counted = len(pending) if pending is not None else 0
    raw.execute("SAVEPOINT call")
    try:
        write(conn)
    except Exception as exc:  # noqa: BLE001 - this call's failure alone; the others in the group still commit
        raw.execute("ROLLBACK TO call")
        raw.execute("RELEASE call")
        if pending is not None:
            del pending[counted:]
        return exc
    raw.execute("RELEASE call")
    return None
