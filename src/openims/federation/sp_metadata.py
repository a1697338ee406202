"""OpenIMS's own SAML 2.0 service-provider facts for an account (user-based SSO into the console): entity
ID, Assertion Consumer Service URL and the SP metadata document to give the identity provider."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

from openims.config import Settings

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAME_ID_FORMATS = (
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8470"

register_namespace("md", MD)


@dataclass(frozen=True)
class ServiceProvider:
    entity_id: str
    acs_url: str
    metadata_url: str

    def metadata_xml(self) -> bytes:
        """A well-formed SAML 2.0 metadata document: EntityDescriptor/SPSSODescriptor with the ACS."""
        root = Element(f"{{{MD}}}EntityDescriptor", {"entityID": self.entity_id})
        sp = SubElement(
            root,
            f"{{{MD}}}SPSSODescriptor",
            {
                "AuthnRequestsSigned": "false",
                "WantAssertionsSigned": "true",
                "protocolSupportEnumeration": PROTOCOL,
            },
        )
        # Schema order: NameIDFormat elements come before the AssertionConsumerService ones.
        for name_id_format in NAME_ID_FORMATS:
            SubElement(sp, f"{{{MD}}}NameIDFormat").text = name_id_format
        SubElement(
            sp,
            f"{{{MD}}}AssertionConsumerService",
            {"Binding": HTTP_POST, "Location": self.acs_url, "index": "0", "isDefault": "true"},
        )
        return bytes(tostring(root, encoding="utf-8", xml_declaration=True))


def public_url(settings: Settings) -> str:
    """Where users reach this server (scheme://host[:port]): OPENIMS_PUBLIC_URL, else the address `serve` listens on."""
    return (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def service_provider(settings: Settings, account_id: str) -> ServiceProvider:
    base = public_url(settings)
    return ServiceProvider(
        entity_id=f"{base}/console/saml/metadata/{account_id}",
        acs_url=f"{base}/console/saml/acs/{account_id}",
        metadata_url=f"{base}/console/saml/metadata/{account_id}",
    )
