"""The console's Integrity page: the account's newest signed checkpoint, the signing keys, and a button that
verifies the account's log (recorded as a VerifyEventLog event, like every console operation)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.console.web import Page, endpoint, error_page
from openims.errors import ApiError
from openims.integrity import signing_keys, status, verifier

READ = "LookupEvents"  # who may read the account's events may check them


def _refused(page: Page) -> Response | None:
    if page.may(READ, _version=ACTIONTRAIL.version):
        return None
    return error_page(
        page,
        ApiError("NoPermission", f"You are not authorized to do action actiontrail:{READ}: no policy allows it.", 403),
    )


@endpoint()
def integrity_page(page: Page) -> Response:
    if (refused := _refused(page)) is not None:
        return refused
    return _page(page, None)


@endpoint()
def integrity_verify(page: Page) -> Response:
    if (refused := _refused(page)) is not None:
        return refused
    assert page.session is not None
    account_id = page.session.account_id
    (report,) = verifier.verify(page.rt, account_id)
    response, tampered = verifier.outcome(report)
    with page.rt.db.transaction() as conn:
        outside_api.record(
            page.rt,
            conn,
            verifier.EVENT,
            page.session.principal(),
            Origin(page.source_ip, page.user_agent, page.scheme),
            service=ACTIONTRAIL,
            response=response,
            error=(tampered.code, tampered.message) if tampered is not None else None,
        )
    return _page(page, report)


def _page(page: Page, result: verifier.AccountReport | None) -> Response:
    """The Integrity page, with the result of a verification just run, if any."""
    assert page.session is not None
    with page.rt.db.read() as conn:
        keys = signing_keys.listed(conn)
    return page.render(
        "integrity.html",
        section="integrity",
        title="Integrity",
        checkpoint=status.newest(page.rt, page.session.account_id),
        keys=keys,
        result=result,
        when=clock.iso,
    )


routes = [
    Route("/integrity", integrity_page, methods=["GET"]),
    Route("/integrity/verify", integrity_verify, methods=["POST"]),
]
