"""The console's Integrity page: the account's newest signed checkpoint, the signing keys, and a button that
verifies the account's log in the background (integrity/verify_jobs.py), recorded as a VerifyEventLog event when
it ends, like every console operation."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.console.web import Page, endpoint, error_page
from openims.errors import ApiError
from openims.integrity import signing_keys, status, verifier, verify_jobs

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
    return _page(page)


@endpoint()
def integrity_verify(page: Page) -> Response:
    """Start verifying the account's log in the background; the page then shows its progress and result."""
    if (refused := _refused(page)) is not None:
        return refused
    assert page.session is not None
    rt, principal = page.rt, page.session.principal()
    origin = Origin(page.source_ip, page.user_agent, page.scheme)

    def finished(report: verifier.AccountReport | None) -> None:
        # Recorded when the verification ends, with what it found, as the operator's CLI run records it.
        error: tuple[str, str] | None
        if report is None:
            response, error = None, ("InternalError", "the verification stopped before it finished")
        else:
            outcome, tampered = verifier.outcome(report)
            response, error = outcome, (tampered.code, tampered.message) if tampered is not None else None
        with rt.db.transaction() as conn:
            outside_api.record(
                rt, conn, verifier.EVENT, principal, origin, service=ACTIONTRAIL, response=response, error=error
            )

    verify_jobs.start(rt, page.session.account_id, finished)
    return page.redirect("/integrity")


def _page(page: Page) -> Response:
    """The Integrity page, with the account's newest verification (running: the page refreshes itself)."""
    assert page.session is not None
    with page.rt.db.read() as conn:
        keys = signing_keys.listed(conn)
    job = verify_jobs.newest(page.rt, page.session.account_id)
    response = page.render(
        "integrity.html",
        section="integrity",
        title="Integrity",
        checkpoint=status.newest(page.rt, page.session.account_id),
        keys=keys,
        job=job,
        when=clock.iso,
    )
    if job is not None and job.state == "running":
        response.headers["Refresh"] = "2"
    return response


routes = [
    Route("/integrity", integrity_page, methods=["GET"]),
    Route("/integrity/verify", integrity_verify, methods=["POST"]),
]
