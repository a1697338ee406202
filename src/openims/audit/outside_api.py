"""Events for what the operator does to an account on the server, outside the API (`openims account
set-password`, `set-mfa`, `unset-mfa`): recorded in the account as its root identity, userAgent
`openims-cli`, source `localhost`, so the account's history shows every change to how its root signs in."""

from __future__ import annotations

from sqlalchemy import Connection

from openims import ids
from openims.actions.registry import IMS
from openims.audit import event as audit
from openims.cli.trails import CLI_AGENT
from openims.errors import ApiError
from openims.principal import ROOT, Principal
from openims.runtime import Runtime


def record(rt: Runtime, conn: Connection, account_id: str, name: str, err: ApiError | None = None) -> None:
    """One Write event named `name` in `conn`'s transaction; `err` makes it a refused attempt."""
    principal = Principal(account_id=account_id, kind=ROOT, principal_id=account_id, user_name="root")
    event = audit.build(
        name=name,
        service_name=IMS.name,
        event_source=IMS.event_source,
        api_version="",
        rw="Write",
        is_global=True,
        principal=principal,
        request_id=ids.request_id(),
        source_ip="localhost",
        user_agent=CLI_AGENT,
        region=rt.settings.region,
        raw_params={},
        secret=frozenset(),
        resource_type="",
        resources=[],
        response={} if err is None else None,
        error=(err.code, err.message) if err is not None else None,
    )
    audit.record(conn, event)
