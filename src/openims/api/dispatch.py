"""One call, end to end: authenticate, validate, authorize, run the handler and record its event in one
transaction; on any error roll back and record the failure event in a transaction of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from openims import clock, jsontext
from openims.actions import registry
from openims.actions.context import CallContext
from openims.actions.table import ACTIONS
from openims.api.protocol import RpcRequest, Unreadable
from openims.api.signing import AuthError, KeyCheck, authenticate, claimed_key_id, load_key
from openims.audit import event as audit
from openims.authz.rules import authorize
from openims.errors import ApiError, internal_error, storage_unavailable
from openims.lifecycle.tracker import Tracker, created_by, named_by_params
from openims.params import parse_all
from openims.principal import UNKNOWN, Principal
from openims.runtime import Runtime
from openims.store import constraints
from openims.store.db import Snapshot, is_storage_failure
from openims.store.prepared import Prepared
from openims.store.schema import signature_nonces

log = logging.getLogger("openims.dispatch")


@dataclass
class Pending:
    """A call checked up to its transaction: `work` runs that transaction's part (a read's event; a write, from
    its authentication on) and returns the answer. Whoever runs `work` commits it, alone (`finish`) or with other
    calls' (api/group_commit.py), and answers only once it committed; when `work` or the commit fails,
    `fail(exc)` records the call's failure and returns the error to answer."""

    work: Callable[[Connection], dict[str, Any]]
    fail: Callable[[Exception], ApiError]


def dispatch(rt: Runtime, req: RpcRequest, key_checks: Sequence[KeyCheck] = ()) -> dict[str, Any]:
    """Run a signed API request in a transaction of its own; returns the response body or raises ApiError
    (already audited). `key_checks` run in order once the signature is proven (see api/app.py)."""
    return finish(rt, begin(rt, req, key_checks))


def finish(rt: Runtime, pending: Pending) -> dict[str, Any]:
    try:
        with rt.db.transaction() as conn:
            return pending.work(conn)
    except Exception as exc:  # noqa: BLE001 - `fail` audits it, and logs our own faults
        raise pending.fail(exc) from None


def begin(rt: Runtime, req: RpcRequest, key_checks: Sequence[KeyCheck] = ()) -> Pending:
    """A signed API request up to its transaction; raises ApiError (already audited) for a call that fails
    before it. A read is authenticated and answered on one read snapshot, leaving only its event (and nonce) to
    write. A write without slow work is checked entirely in its transaction, so that it sees every write
    committed or grouped before it: a key disabled, a policy detached by the call just before."""
    action = ACTIONS.lookup(req.version, req.action)
    if action is not None and action.rw == registry.WRITE and action.prepare is None:
        return _write_in_transaction(rt, req, key_checks, action)
    with rt.db.snapshot() as snapshot:
        try:
            auth = authenticate(rt, req, key_checks, action.secret_params if action else (), snapshot.conn)
        except AuthError as err:
            raise _refused(rt, req, action, err) from None
        nonce = (auth.principal.access_key_id, auth.nonce, auth.nonce_expires_ms)
        return _begin(rt, req, auth.principal, nonce, snapshot)


def _write_in_transaction(
    rt: Runtime, req: RpcRequest, key_checks: Sequence[KeyCheck], action: registry.Action
) -> Pending:
    caller: list[tuple[Principal, tuple[str, str, int]]] = []  # once authenticated

    def work(conn: Connection) -> dict[str, Any]:
        auth = authenticate(rt, req, key_checks, action.secret_params, lambda: conn)
        principal, nonce = auth.principal, (auth.principal.access_key_id, auth.nonce, auth.nonce_expires_ms)
        caller.append((principal, nonce))
        return _transactional(rt, action, parse_all(action.params, req.params), req, principal, nonce)(conn)

    def fail(exc: Exception) -> ApiError:
        if caller:
            principal, nonce = caller[0]
            return _audited_failure(rt, req, principal, action, exc, nonce)
        if isinstance(exc, AuthError):
            return _refused(rt, req, action, exc)
        # Storage failed before the caller was known: nobody's account to record it in, the log keeps it.
        return _audited_failure(rt, req, None, action, exc, None)

    return Pending(work, fail)


def _refused(rt: Runtime, req: RpcRequest, action: registry.Action | None, err: AuthError) -> ApiError:
    """A request whose authentication failed: audited in the key's account when the key is known."""
    if err.principal is None:
        log.info("rejected unsigned or unknown-key request %s from %s: %s", req.request_id, req.source_ip, err.code)
        return err
    if action is not None:
        # What the refused request named (as given: nothing of it is trusted), so a search by resource shows the
        # attempts on it too.
        err.resources = _resources(action, {p.name: req.params.get(p.name) for p in action.params}, None)
    return _record_failure(rt, req, err.principal, None, err, nonce=None)


def record_unreadable(rt: Runtime, err: Unreadable) -> None:
    """Audit a request refused while it was read in the account of the AccessKey it names, when that key
    exists: its signature could not be checked, so it is recorded as a bad signature is."""
    req = err.request
    key_id = claimed_key_id(req)
    if not key_id:
        return
    try:
        key = load_key(rt, key_id)
    except AuthError:
        return
    _record_failure(rt, req, key.principal, ACTIONS.lookup(req.version, req.action), err, nonce=None)


def execute(rt: Runtime, req: RpcRequest, principal: Principal) -> dict[str, Any]:
    """Run a request made as `principal` by the console or the CLI, as a signed API request runs: the answer
    holds plain values (stored JSON parsed), for the caller to read."""
    body: dict[str, Any] = jsontext.plain(finish(rt, _begin(rt, req, principal)))
    return body


def _begin(
    rt: Runtime,
    req: RpcRequest,
    principal: Principal,
    nonce: tuple[str, str, int] | None = None,
    snapshot: Snapshot | None = None,
) -> Pending:
    """Validate an authenticated request and run what comes before its transaction; every failure is audited.
    Signed API requests, the console and the CLI all come through here; `snapshot` is the call's reads so far
    (its AccessKey), which a read action goes on reading in."""
    action = ACTIONS.lookup(req.version, req.action)

    def fail(exc: Exception) -> ApiError:
        return _audited_failure(rt, req, principal, action, exc, nonce)

    try:
        if action is None:
            raise _unknown_action(req)
        params = parse_all(action.params, req.params)
        return Pending(_transactional(rt, action, params, req, principal, nonce, snapshot), fail)
    except Exception as exc:  # noqa: BLE001 - every failure is audited; _audited_failure logs our own faults
        raise fail(exc) from None


def _audited_failure(
    rt: Runtime,
    req: RpcRequest,
    principal: Principal | None,
    action: registry.Action | None,
    exc: Exception,
    nonce: tuple[str, str, int] | None,
) -> ApiError:
    """The error to answer for a call that failed with `exc`, its failure event recorded (in the caller's
    account: a `principal` of None, a call whose storage failed before it was authenticated, is only logged)."""
    if isinstance(exc, IntegrityError):
        exc = constraints.to_api_error(exc)
    if isinstance(exc, ApiError):
        return _record_failure(rt, req, principal, action, exc, nonce) if principal is not None else exc
    if isinstance(exc, DBAPIError) and is_storage_failure(exc):
        log.error("request %s (%s) not stored: %s", req.request_id, req.action, _first_line(exc))
        failure = storage_unavailable()
    else:
        # A fault of ours: the caller gets InternalError, the event records it, the log has the traceback.
        log.error("internal error in %s (request %s)", req.action, req.request_id, exc_info=exc)
        failure = internal_error()
    return _record_failure(rt, req, principal, action, failure, nonce) if principal is not None else failure


def run(
    rt: Runtime, action: registry.Action, params: dict[str, Any], req: RpcRequest, principal: Principal
) -> dict[str, Any]:
    """Authorize and execute an already-authenticated call with its event, in a transaction of its own; raises
    what failed, unaudited (for tests that call one action directly)."""
    work = _transactional(rt, action, params, req, principal)
    with rt.db.transaction() as conn:
        return work(conn)


def _transactional(
    rt: Runtime,
    action: registry.Action,
    params: dict[str, Any],
    req: RpcRequest,
    principal: Principal,
    nonce: tuple[str, str, int] | None = None,
    snapshot: Snapshot | None = None,
) -> Callable[[Connection], dict[str, Any]]:
    """Run what of the call comes before its transaction and return the rest, which answers.
    A write and its event run in the transaction together. A read changes nothing: it runs now, on a read-only
    connection outside the write lock, and only its event (with the nonce) is left for the transaction."""
    reads = snapshot or rt.db.snapshot()
    try:
        prepared = None
        if action.prepare is not None:
            # Slow work (a network fetch, password hashing) runs before the write transaction, so it never holds
            # the write lock; only for a caller who is already authorized to make the call.
            ahead = _context(rt, req, principal, reads.conn())
            prepared = action.prepare(ahead, authorize_resolved(ahead, action, params))
        if action.rw == registry.READ:
            result, resources = _handle(rt, action, params, req, principal, reads.conn(), prepared)
            event = _event(rt, req, principal, action, resources, result)
            answer = {"RequestId": req.request_id, **result}

            def record(conn: Connection) -> dict[str, Any]:
                if nonce is not None:
                    _use_nonce(conn, nonce)
                audit.record(conn, event)
                return answer

            return record
    finally:
        reads.close()  # before the transaction: a call holds one connection at a time

    def write(conn: Connection) -> dict[str, Any]:
        if nonce is not None:
            _use_nonce(conn, nonce)
        rt.db.serialize_account(conn, principal.account_id)
        tracker = Tracker(conn, principal.account_id)
        result, resources = _handle(rt, action, params, req, principal, conn, prepared, tracker)
        changes = tracker.changes(resources, created_by(action, result))
        audit.record(conn, _event(rt, req, principal, action, resources, response=result, changes=changes))
        return {"RequestId": req.request_id, **result}

    return write


def _handle(
    rt: Runtime,
    action: registry.Action,
    params: dict[str, Any],
    req: RpcRequest,
    principal: Principal,
    conn: Connection,
    prepared: Any = None,
    tracker: Tracker | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Authorize and run the handler on `conn`: its response, and every resource the call touched."""
    ctx = _context(rt, req, principal, conn, prepared)
    resolved = params
    try:
        if tracker is not None:
            # Each resource's state before the handler changes it: those the request names, now, and those the
            # handler finds, as it names them.
            ctx.watch = tracker.watch
            for found in named_by_params(action, params, conn, principal.account_id):
                tracker.watch(*found)
        resolved = authorize_resolved(ctx, action, params)
        out = action.handler(ctx, resolved)
    except ApiError as err:
        # The failure event names what the call had found before it failed (the users of a TagResources over
        # quota, say), so a search by resource shows the attempt.
        err.resources = _resources(action, resolved, ctx)
        raise
    return out, _resources(action, resolved, ctx, out)


def authorize_resolved(ctx: CallContext, action: registry.Action, params: dict[str, Any]) -> dict[str, Any]:
    """Authorize the call on the very resource its handler will act on: the parameters resolved once (see
    Action.resolve), which are what the handler then gets."""
    resolved = action.resolve(ctx, params) if action.resolve is not None else params
    authorize(ctx, action, resolved)
    return resolved


def _context(rt: Runtime, req: RpcRequest, principal: Principal, conn: Connection, prepared: Any = None) -> CallContext:
    return CallContext(
        conn=conn,
        principal=principal,
        runtime=rt,
        request_id=req.request_id,
        source_ip=req.source_ip,
        user_agent=req.user_agent,
        now_ms=clock.now_ms(),
        scheme=req.scheme,
        prepared=prepared,
        actions=ACTIONS,
    )


def allowed(rt: Runtime, req: RpcRequest, principal: Principal) -> bool:
    """Whether `principal` may make this call now, by the same rules as `run`, without making it (no event):
    the console shows only the controls a user may use. The call itself is authorized again when made."""
    action = ACTIONS.lookup(req.version, req.action)
    if action is None:
        return False
    with rt.db.read() as conn:
        try:
            # The console asks before a form is filled in: what is not given yet is None, not an error.
            given = {p.name: req.params.get(p.name) for p in action.params}
            authorize_resolved(_context(rt, req, principal, conn), action, given)
        except ApiError:
            return False
    return True


_INSERT_NONCE = Prepared(signature_nonces.insert(), ["access_key_id", "nonce", "expires_ms"])


class Replay(ApiError):
    """The request's nonce was spent already: a copy of a request that was made before."""

    def __init__(self) -> None:
        super().__init__("SignatureNonceUsed", "The request signature nonce has been used.")


def _use_nonce(conn: Connection, nonce: tuple[str, str, int]) -> None:
    """Spend the nonce, or raise Replay. In a call's transaction it is the first statement, so a duplicate
    aborts the transaction before any other work."""
    key_id, value, expires_ms = nonce
    try:
        _INSERT_NONCE.execute(conn, {"access_key_id": key_id, "nonce": value, "expires_ms": expires_ms})
    except IntegrityError:
        raise Replay from None


def _spend_after_failure(conn: Connection, nonce: tuple[str, str, int]) -> bool:
    """Spend the nonce of a failed call in its failure event's transaction; False if it was spent already.
    Under a savepoint, so that on PostgreSQL a duplicate does not abort the transaction that must still
    record what happened."""
    try:
        with conn.begin_nested():
            _use_nonce(conn, nonce)
    except Replay:
        return False
    return True


def _resources(
    action: registry.Action,
    params: dict[str, Any],
    ctx: CallContext | None,
    response: dict[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Every resource of the call: those its declaration names (by parameter, or in the response), then those
    the handler found."""
    found = named_by_params(action, params, ctx.conn if ctx else None, ctx.account_id if ctx else "")
    extra = (ctx.resources if ctx else []) + (created_by(action, response) if response is not None else [])
    for item in extra:
        if item not in found:
            found.append(item)
    return found


def _event(
    rt: Runtime,
    req: RpcRequest,
    principal: Principal,
    action: registry.Action | None,
    resources: list[tuple[str, str]],
    response: dict[str, Any] | None = None,
    error: ApiError | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return audit.build(
        name=action.name if action else (req.action[:64] or "Unknown"),
        service=action.service if action else registry.SERVICES.get(req.version, registry.IMS),
        rw=action.rw if action else _rw_of_unknown(req.action),
        principal=principal,
        origin=audit.Origin(req.source_ip, req.user_agent, req.scheme),
        request_id=req.request_id,
        region=rt.settings.region,
        api_version=req.version[:32],
        raw_params=req.params,
        secret=(action.secret_params | action.secrets) if action else frozenset(),
        resource_type=action.resource_type if action else "",
        resources=resources,
        response=response,
        error=(error.code, error.message) if error else None,
        sensitive=action.sensitive if action else False,
        changes=changes,
    )


def _rw_of_unknown(name: str) -> str:
    """An action we do not implement: Read or Write as its name says (Alibaba names reads Get/List/...), so
    an attempt to change something shows among the account's writes."""
    return registry.READ if name.startswith(("Get", "List", "Check", "Describe", "Lookup", "Query")) else registry.WRITE


def _record_failure(
    rt: Runtime,
    req: RpcRequest,
    principal: Principal,
    action: registry.Action | None,
    err: ApiError,
    nonce: tuple[str, str, int] | None,
) -> ApiError:
    """Record the failed call's event after the rollback, with what the action declares a failure still
    changes (`on_failure`); returns the error to answer. The nonce is still spent, so a failed request
    cannot be replayed later when it might succeed. A request whose nonce was spent already (found now, or
    when its call began: `err` is a Replay) is recorded as a rejected replay, not as a call of the key's
    owner: whoever resent it only held a copy."""
    params: dict[str, Any] = {}
    if action is not None:
        params = {p.name: req.params.get(p.name) for p in action.params}
    resources = err.resources or (_resources(action, params, None) if action else [])
    event = _event(rt, req, principal, action, resources, error=err)
    try:
        with rt.db.transaction() as conn:
            if isinstance(err, Replay) or (nonce is not None and not _spend_after_failure(conn, nonce)):
                replay = err if isinstance(err, Replay) else Replay()
                audit.record(conn, _replay_event(rt, req, principal, action, replay))
                return replay
            if action is not None and action.on_failure is not None:
                action.on_failure(conn, principal, err)
            audit.record(conn, event)
    except DBAPIError as exc:
        if not is_storage_failure(exc):
            raise
        # Nothing of the call was stored either: the caller is told to retry, the log keeps the attempt.
        log.error("event of failed request %s (%s) not stored: %s", req.request_id, req.action, _first_line(exc))
        return storage_unavailable()
    return err


def _replay_event(
    rt: Runtime, req: RpcRequest, principal: Principal, action: registry.Action | None, replay: Replay
) -> dict[str, Any]:
    sender = Principal(principal.account_id, UNKNOWN, "", "", principal.access_key_id)
    event = _event(rt, req, sender, action, [], error=replay)
    event["additionalEventData"]["rejectedReplay"] = "true"
    return event


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0][:200] if text else exc.__class__.__name__


def _unknown_action(req: RpcRequest) -> ApiError:
    if req.version not in registry.SERVICES:
        return ApiError(
            "InvalidVersion",
            f"The API version {req.version!r} is not supported "
            f"(IMS 2019-08-15, ActionTrail 2020-07-06, RAM 2015-05-01).",
            404,
        )
    return ApiError(
        "InvalidAction.NotFound", f"The action {req.action!r} does not exist in API version {req.version}.", 404
    )
