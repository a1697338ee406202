"""OpenIMS's SAML service-provider metadata for an account, public as SP metadata is (an identity provider
fetches it from the MetadataUrl that GetSamlSsoProperties gives). The same document as that action's."""

from __future__ import annotations

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from openims.federation.sp_metadata import service_provider
from openims.runtime import Runtime
from openims.store.schema import accounts


def _account_exists(rt: Runtime, account_id: str) -> bool:
    with rt.db.read() as conn:
        return conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None


async def sp_metadata(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    account_id = request.path_params["account_id"]
    if not (account_id.isdigit() and await run_in_threadpool(_account_exists, rt, account_id)):
        return PlainTextResponse("No such account.", status_code=404)
    return Response(service_provider(rt.settings, account_id).metadata_xml(), media_type="application/samlmetadata+xml")


routes = [Route("/saml/metadata/{account_id}", sp_metadata, methods=["GET"])]
