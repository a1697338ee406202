"""SAML identity providers for role-based SSO, and the metadata checks user-based SSO shares."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from openims import clock, ids
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, action
from openims.errors import ApiError, already_exists, missing, not_found
from openims.federation.saml_metadata import IdpMetadata, MetadataError, parse_encoded
from openims.params import Str
from openims.store import constraints
from openims.store.tables.federation import saml_providers

SAML = "ACS::RAM::SAMLProvider"
# Alibaba Cloud's published RAM limit (the SDK docs state none).
MAX_SAML_PROVIDERS = 100
# Identity-provider names (SAML and OIDC) share one rule.
PROVIDER_NAME_RULE: dict[str, Any] = {
    "min_len": 1,
    "max_len": 128,
    "pattern": r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?",
    "pattern_doc": "can contain letters, digits, periods (.), hyphens (-) and underscores (_), "
    "and cannot start or end with a period, hyphen or underscore",
}
SIGN_ALGOS = ("rsa-sha256", "rsa-sha1")
DEFAULT_SIGN_ALGO = "rsa-sha1"
NAME = Str("SAMLProviderName", required=True, **PROVIDER_NAME_RULE)
SIGN_ALGO = Str("AuthnSignAlgo", choices=SIGN_ALGOS)

constraints.register(
    "uq_saml_providers_account_name",
    "EntityAlreadyExists.SAMLProvider",
    "The SAML provider already exists.",
    sqlite_columns="saml_providers.account_id, saml_providers.name",
)


def read_metadata(encoded: str, param: str) -> IdpMetadata:
    """Parse a Base64 IdP metadata document given in `param`, as an InvalidParameter error if unusable."""
    try:
        return parse_encoded(encoded)
    except MetadataError as err:
        raise ApiError(f"InvalidParameter.{param}.{err.reason}", f'The parameter - "{param}" {err.why}.') from None


def certificates_json(meta: IdpMetadata) -> str:
    return json.dumps([c.as_dict() for c in meta.certificates])


def certificates_view(stored: str, now_ms: int) -> dict[str, Any]:
    """The signing certificates read from a metadata document, with their validity (an OpenIMS addition)."""
    items = [
        {
            "Subject": c["subject"],
            "Issuer": c["issuer"],
            "SerialNumber": c["serial_number"],
            "NotBefore": clock.iso(c["not_before_ms"]),
            "NotAfter": clock.iso(c["not_after_ms"]),
            "Fingerprint": c["sha256_fingerprint"],
            "Expired": c["not_after_ms"] <= now_ms,
        }
        for c in json.loads(stored or "[]")
    ]
    return {"Certificate": items}


def _arn(ctx: CallContext, name: str) -> str:
    return f"acs:ram::{ctx.account_id}:saml-provider/{name}"


def _view(ctx: CallContext, row: Row[Any], full: bool = False) -> dict[str, Any]:
    view = {
        "Arn": _arn(ctx, row.name),
        "SAMLProviderName": row.name,
        "Description": row.description,
        "AuthnSignAlgo": row.authn_sign_algo,
        "CreateDate": clock.iso(row.created_ms),
        "UpdateDate": clock.iso(row.updated_ms),
    }
    if full:
        view.update(
            {
                "EncodedSAMLMetadataDocument": row.metadata_document,
                "IdpEntityId": row.entity_id,
                "Certificates": certificates_view(row.certificates, ctx.now_ms),
            }
        )
    return view


def _find(ctx: CallContext, name: str) -> Row[Any]:
    row = ctx.conn.execute(
        select(saml_providers).where(
            saml_providers.c.account_id == ctx.account_id, func.lower(saml_providers.c.name) == name.lower()
        )
    ).first()
    if row is None:
        raise not_found("SAMLProvider", name)
    ctx.reference(SAML, row.name)
    return row


def _reread(ctx: CallContext, row_id: str) -> Row[Any]:
    return ctx.conn.execute(select(saml_providers).where(saml_providers.c.id == row_id)).one()


@action(
    "CreateSAMLProvider",
    rw=WRITE,
    resource=(SAML, "SAMLProviderName"),
    arn="saml-provider/{SAMLProviderName}",
    params=(NAME, Str("Description", max_len=256), Str("EncodedSAMLMetadataDocument", required=True), SIGN_ALGO),
)
def create_saml_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an identity provider for role-based SSO from its Base64 SAML 2.0 metadata document."""
    name = p["SAMLProviderName"]
    meta = read_metadata(p["EncodedSAMLMetadataDocument"], "EncodedSAMLMetadataDocument")
    mine = saml_providers.c.account_id == ctx.account_id
    if ctx.conn.execute(
        select(saml_providers.c.id).where(mine, func.lower(saml_providers.c.name) == name.lower())
    ).first():
        raise already_exists("SAMLProvider", name)
    if (
        ctx.conn.execute(select(func.count()).select_from(saml_providers).where(mine)).scalar_one()
        >= MAX_SAML_PROVIDERS
    ):
        raise ApiError(
            "LimitExceeded.SAMLProvider", f"An account can have at most {MAX_SAML_PROVIDERS} SAML providers."
        )
    row_id = ids.user_id()
    ctx.conn.execute(
        insert(saml_providers).values(
            id=row_id,
            account_id=ctx.account_id,
            name=name,
            description=p["Description"] or "",
            authn_sign_algo=p["AuthnSignAlgo"] or DEFAULT_SIGN_ALGO,
            metadata_document=p["EncodedSAMLMetadataDocument"],
            entity_id=meta.entity_id,
            certificates=certificates_json(meta),
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    return {"SAMLProvider": _view(ctx, _reread(ctx, row_id))}


@action("GetSAMLProvider", params=(NAME,), resource=(SAML, "SAMLProviderName"), arn="saml-provider/{SAMLProviderName}")
def get_saml_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query an identity provider for role-based SSO, with its metadata and signing certificates."""
    return {"SAMLProvider": _view(ctx, _find(ctx, p["SAMLProviderName"]), full=True)}


@action(
    "UpdateSAMLProvider",
    rw=WRITE,
    resource=(SAML, "SAMLProviderName"),
    arn="saml-provider/{SAMLProviderName}",
    params=(NAME, Str("NewDescription", max_len=256), Str("NewEncodedSAMLMetadataDocument"), SIGN_ALGO),
)
def update_saml_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Replace an identity provider's metadata document, description or signature algorithm."""
    if p["NewDescription"] is None and p["NewEncodedSAMLMetadataDocument"] is None and p["AuthnSignAlgo"] is None:
        raise missing("NewEncodedSAMLMetadataDocument")
    row = _find(ctx, p["SAMLProviderName"])
    changes: dict[str, Any] = {}
    if p["NewEncodedSAMLMetadataDocument"] is not None:
        meta = read_metadata(p["NewEncodedSAMLMetadataDocument"], "NewEncodedSAMLMetadataDocument")
        changes.update(
            metadata_document=p["NewEncodedSAMLMetadataDocument"],
            entity_id=meta.entity_id,
            certificates=certificates_json(meta),
        )
    if p["NewDescription"] is not None:
        changes["description"] = p["NewDescription"]
    if p["AuthnSignAlgo"] is not None:
        changes["authn_sign_algo"] = p["AuthnSignAlgo"]
    ctx.conn.execute(
        update(saml_providers).where(saml_providers.c.id == row.id).values(updated_ms=ctx.now_ms, **changes)
    )
    return {"SAMLProvider": _view(ctx, _reread(ctx, row.id))}


@action(
    "DeleteSAMLProvider",
    rw=WRITE,
    params=(NAME,),
    resource=(SAML, "SAMLProviderName"),
    arn="saml-provider/{SAMLProviderName}",
)
def delete_saml_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an identity provider for role-based SSO."""
    row = _find(ctx, p["SAMLProviderName"])
    ctx.conn.execute(delete(saml_providers).where(saml_providers.c.id == row.id))
    return {}


@action("ListSAMLProviders", params=(MARKER, max_items(100, 100)))
def list_saml_providers(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's identity providers for role-based SSO."""
    query = select(saml_providers).where(saml_providers.c.account_id == ctx.account_id)
    rows, fields = page(ctx.conn, query, saml_providers.c.name, p["Marker"], p["MaxItems"])
    return {"SAMLProviders": {"SAMLProvider": [_view(ctx, r) for r in rows]}, **fields}
