"""User-based SSO: the account's SAML identity provider for RAM users, and OpenIMS's own service-provider
facts (entity ID, ACS URL, SP metadata) to configure on that identity provider."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.actions.saml import DEFAULT_SIGN_ALGO, SIGN_ALGO, certificates_json, certificates_view, read_metadata
from openims.errors import missing
from openims.federation.sp_metadata import service_provider
from openims.params import Bool, Str
from openims.store.tables.federation import user_sso_settings

SET_PARAMS = (
    SIGN_ALGO,
    Str(
        "AuxiliaryDomain",
        max_len=128,
        pattern=r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
        pattern_doc="must be a domain name, for example example.com",
    ),
    Str("MetadataDocument"),
    Bool("SsoEnabled"),
    Bool("SsoLoginWithDomain"),
)


def sso_required(conn: Connection, account_id: str) -> bool:
    """With user SSO on, the account's RAM users sign in through its identity provider only: password logon
    is off for them, as in Alibaba Cloud (the root identity and AccessKeys are unaffected)."""
    enabled = conn.execute(
        select(user_sso_settings.c.sso_enabled).where(user_sso_settings.c.account_id == account_id)
    ).scalar()
    return bool(enabled)


def _row(ctx: CallContext) -> Row[Any] | None:
    return ctx.conn.execute(select(user_sso_settings).where(user_sso_settings.c.account_id == ctx.account_id)).first()


def settings_view(ctx: CallContext, row: Row[Any] | None) -> dict[str, Any]:
    """The SDK's UserSsoSettings fields (defaults until first set), plus what was read from the metadata."""
    if row is None:
        return {
            "SsoEnabled": False,
            "SsoLoginWithDomain": True,
            "AuxiliaryDomain": "",
            "MetadataDocument": "",
            "AuthnSignAlgo": DEFAULT_SIGN_ALGO,
            "IdpEntityId": "",
            "Certificates": {"Certificate": []},
        }
    return {
        "SsoEnabled": row.sso_enabled,
        "SsoLoginWithDomain": row.sso_login_with_domain,
        "AuxiliaryDomain": row.auxiliary_domain,
        "MetadataDocument": row.metadata_document,
        "AuthnSignAlgo": row.authn_sign_algo,
        "IdpEntityId": row.entity_id,
        "Certificates": certificates_view(row.certificates, ctx.now_ms),
    }


def properties_view(ctx: CallContext) -> dict[str, Any]:
    sp = service_provider(ctx.runtime.settings, ctx.account_id)
    return {
        "EntityId": sp.entity_id,
        "AcsUrl": sp.acs_url,
        "MetadataUrl": sp.metadata_url,
        "MetadataDocument": base64.b64encode(sp.metadata_xml()).decode("ascii"),
    }


@action("SetUserSsoSettings", rw=WRITE, params=SET_PARAMS, sensitive=True)
def set_user_sso_settings(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Configure user-based SSO: the IdP's Base64 SAML metadata, whether SSO is on, and how NameIDs map to users.
    Parameters left out keep their current values."""
    row = _row(ctx)
    values: dict[str, Any] = {}
    if p["MetadataDocument"] is not None:
        meta = read_metadata(p["MetadataDocument"], "MetadataDocument")
        values.update(
            metadata_document=p["MetadataDocument"], entity_id=meta.entity_id, certificates=certificates_json(meta)
        )
    for param, column in (
        ("SsoEnabled", "sso_enabled"),
        ("SsoLoginWithDomain", "sso_login_with_domain"),
        ("AuxiliaryDomain", "auxiliary_domain"),
        ("AuthnSignAlgo", "authn_sign_algo"),
    ):
        if p[param] is not None:
            values[column] = p[param]
    enabled = values.get("sso_enabled", row.sso_enabled if row else False)
    has_metadata = bool(values.get("metadata_document") or (row and row.metadata_document))
    if enabled and not has_metadata:
        raise missing("MetadataDocument")
    if row is None:
        defaults = {"sso_enabled": False, "sso_login_with_domain": True, "authn_sign_algo": DEFAULT_SIGN_ALGO}
        ctx.conn.execute(
            insert(user_sso_settings).values(account_id=ctx.account_id, updated_ms=ctx.now_ms, **{**defaults, **values})
        )
    else:
        ctx.conn.execute(
            update(user_sso_settings)
            .where(user_sso_settings.c.account_id == ctx.account_id)
            .values(updated_ms=ctx.now_ms, **values)
        )
    return {"UserSsoSettings": settings_view(ctx, _row(ctx))}


@action("GetUserSsoSettings")
def get_user_sso_settings(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the user-based SSO settings."""
    return {"UserSsoSettings": settings_view(ctx, _row(ctx))}


@action("GetSamlSsoProperties", extension=True)
def get_saml_sso_properties(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """OpenIMS's SAML service-provider facts for the account (entity ID, ACS URL, Base64 SP metadata), to enter
    in the identity provider. OpenIMS extension."""
    return {"SamlSsoProperties": properties_view(ctx)}


@action("GetSamlSsoSettings", extension=True)
def get_saml_sso_settings(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Both sides of user-based SSO in one answer: the IdP settings (as GetUserSsoSettings) and OpenIMS's
    service-provider facts (as GetSamlSsoProperties). OpenIMS extension."""
    return {"SamlSsoSettings": {**settings_view(ctx, _row(ctx)), "ServiceProvider": properties_view(ctx)}}
