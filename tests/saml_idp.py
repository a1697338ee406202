"""A SAML 2.0 identity provider for tests: its own key and self-signed certificate, its metadata, and signed
Responses built with lxml's element API and signed with signxml (as a real IdP's library would), plus an HTTP
server that answers AuthnRequests (HTTP-Redirect binding) with an auto-posting form, as Keycloak does.
Knobs make the Responses OpenIMS must refuse: expired, for another audience, signed by another key, wrapped."""

from __future__ import annotations

import base64
import copy
import html
import secrets
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NSMAP = {"samlp": PROTOCOL, "saml": ASSERTION}


def _key_and_cert(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _instant(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _el(parent: etree._Element | None, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    qname = f"{{{ns}}}{tag}"
    element = etree.Element(qname, attrs, nsmap=NSMAP) if parent is None else etree.SubElement(parent, qname, attrs)
    if text is not None:
        element.text = text
    return element


@dataclass
class Sp:
    """The SP facts GetSamlSsoProperties gives."""

    entity_id: str
    acs_url: str


@dataclass
class SamlIdp:
    entity_id: str = "http://idp.test/realms/openims"
    sso_url: str = "http://idp.test/sso"
    # Whether the metadata offers the HTTP-Redirect binding for AuthnRequests (always HTTP-POST).
    redirect_binding: bool = True
    key: rsa.RSAPrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.key, self.cert = _key_and_cert("test-idp")

    def cert_b64(self, cert: x509.Certificate | None = None) -> str:
        return base64.b64encode((cert or self.cert).public_bytes(serialization.Encoding.DER)).decode()

    def metadata(self) -> bytes:
        root = etree.Element(f"{{{MD}}}EntityDescriptor", {"entityID": self.entity_id}, nsmap={"md": MD, "ds": DS})
        idp = etree.SubElement(
            root,
            f"{{{MD}}}IDPSSODescriptor",
            {"protocolSupportEnumeration": PROTOCOL, "WantAuthnRequestsSigned": "false"},
        )
        key = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor", {"use": "signing"})
        info = etree.SubElement(key, f"{{{DS}}}KeyInfo")
        etree.SubElement(etree.SubElement(info, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate").text = self.cert_b64()
        if self.redirect_binding:
            etree.SubElement(idp, f"{{{MD}}}SingleSignOnService", {"Binding": REDIRECT, "Location": self.sso_url})
        etree.SubElement(idp, f"{{{MD}}}SingleSignOnService", {"Binding": POST, "Location": self.sso_url})
        return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))

    def metadata_b64(self) -> str:
        return base64.b64encode(self.metadata()).decode()

    def response(
        self,
        sp: Sp,
        name_id: str,
        *,
        in_response_to: str | None = None,
        sign: str = "assertion",
        issued: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=5),
        audience: str | None = None,
        recipient: str | None = None,
        issuer: str | None = None,
        signing_key: tuple[rsa.RSAPrivateKey, x509.Certificate] | None = None,
        algorithm: str = "rsa-sha256",
    ) -> bytes:
        """A Response signed as `sign` says: "assertion", "response", or "both"."""
        now = issued or datetime.now(UTC)
        until = now + lifetime
        response = _el(
            None,
            PROTOCOL,
            "Response",
            ID="_" + secrets.token_hex(16),
            Version="2.0",
            IssueInstant=_instant(now),
            Destination=sp.acs_url,
        )
        if in_response_to:
            response.set("InResponseTo", in_response_to)
        _el(response, ASSERTION, "Issuer", issuer or self.entity_id)
        status = _el(response, PROTOCOL, "Status")
        _el(status, PROTOCOL, "StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
        assertion = _el(
            response, ASSERTION, "Assertion", ID="_" + secrets.token_hex(16), Version="2.0", IssueInstant=_instant(now)
        )
        _el(assertion, ASSERTION, "Issuer", issuer or self.entity_id)
        subject = _el(assertion, ASSERTION, "Subject")
        _el(subject, ASSERTION, "NameID", name_id, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
        confirmation = _el(subject, ASSERTION, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
        data = _el(
            confirmation,
            ASSERTION,
            "SubjectConfirmationData",
            NotOnOrAfter=_instant(until),
            Recipient=recipient or sp.acs_url,
        )
        if in_response_to:
            data.set("InResponseTo", in_response_to)
        conditions = _el(
            assertion,
            ASSERTION,
            "Conditions",
            NotBefore=_instant(now - timedelta(seconds=5)),
            NotOnOrAfter=_instant(until),
        )
        _el(_el(conditions, ASSERTION, "AudienceRestriction"), ASSERTION, "Audience", audience or sp.entity_id)
        statement = _el(
            assertion, ASSERTION, "AuthnStatement", AuthnInstant=_instant(now), SessionIndex="_" + secrets.token_hex(8)
        )
        context = _el(statement, ASSERTION, "AuthnContext")
        _el(
            context,
            ASSERTION,
            "AuthnContextClassRef",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        key, cert = signing_key or (self.key, self.cert)
        if sign in ("assertion", "both"):
            signed = self._sign(assertion, key, cert, algorithm)
            response.replace(assertion, signed)
        if sign in ("response", "both"):
            response = self._sign(response, key, cert, algorithm)
        return bytes(etree.tostring(response))

    @staticmethod
    def _sign(
        element: etree._Element, key: rsa.RSAPrivateKey, cert: x509.Certificate, algorithm: str
    ) -> etree._Element:
        # The signature goes right after the Issuer, where the SAML schema wants it.
        placeholder = etree.Element(f"{{{DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS})
        element.insert(1, placeholder)
        signer = (_LegacySigner if "sha1" in algorithm else XMLSigner)(
            signature_algorithm=algorithm,
            digest_algorithm=algorithm.rpartition("-")[2],
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return signer.sign(element, key=key, cert=[pem.decode()], reference_uri=element.get("ID"))  # type: ignore[no-any-return]


class _LegacySigner(XMLSigner):
    """Signs with SHA-1 as old IdPs still do (signxml refuses to by default)."""

    def check_deprecated_methods(self) -> None:
        pass


def wrapped(signed_response: bytes, evil_name_id: str) -> bytes:
    """XML signature wrapping: a forged Assertion for `evil_name_id` takes the genuine signed Assertion's place,
    carrying its Signature, with the genuine Assertion tucked away inside (saml:Advice), where the signature's
    Reference still finds it."""
    response = etree.fromstring(signed_response)
    genuine = response.find(f"{{{ASSERTION}}}Assertion")
    assert genuine is not None
    evil = copy.deepcopy(genuine)
    evil.set("ID", "_evil" + secrets.token_hex(8))
    evil_signature = evil.find(f"{{{DS}}}Signature")
    assert evil_signature is not None
    evil.remove(evil_signature)
    name = evil.find(f"{{{ASSERTION}}}Subject/{{{ASSERTION}}}NameID")
    assert name is not None
    name.text = evil_name_id
    signature = genuine.find(f"{{{DS}}}Signature")
    assert signature is not None
    genuine.remove(signature)  # the enveloped-signature transform left it out of the digest anyway
    evil.insert(1, signature)
    advice = etree.Element(f"{{{ASSERTION}}}Advice")
    conditions = evil.find(f"{{{ASSERTION}}}Conditions")
    assert conditions is not None
    conditions.addnext(advice)
    response.replace(genuine, evil)
    advice.append(genuine)
    return bytes(etree.tostring(response))


def b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def read_authn_request(query: str) -> tuple[etree._Element, str | None]:
    """The AuthnRequest of an HTTP-Redirect binding query (DEFLATE, Base64), and its RelayState."""
    params = parse_qs(query)
    raw = zlib.decompress(base64.b64decode(params["SAMLRequest"][0]), -15)
    return etree.fromstring(raw), (params.get("RelayState") or [None])[0]


def post_form(acs_url: str, saml_response: bytes, relay_state: str | None) -> str:
    """The page an IdP answers with: a form that posts the Response to the ACS by itself."""
    relay = (
        f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">' if relay_state is not None else ""
    )
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(acs_url)}">'
        f'<input type="hidden" name="SAMLResponse" value="{b64(saml_response)}">{relay}'
        "<noscript><button>Continue</button></noscript></form></body></html>"
    )


@dataclass
class IdpServer:
    """An IdP at http://localhost:<port> (its metadata's SSO URL once running): /sso answers an AuthnRequest
    for `user` (who is "signed in" at the IdP), /start starts an IdP-initiated sign-in. Records the
    AuthnRequests it got."""

    idp: SamlIdp
    sp: Sp
    user: str = ""
    requests: list[etree._Element] = field(default_factory=list)
    port: int = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/sso":
                    request, relay = read_authn_request(url.query)
                    server.requests.append(request)
                    acs = request.get("AssertionConsumerServiceURL") or server.sp.acs_url
                    xml = server.idp.response(server.sp, server.user, in_response_to=request.get("ID"))
                    self._answer(post_form(acs, xml, relay))
                elif url.path == "/start":
                    relay = (parse_qs(url.query).get("RelayState") or [None])[0]
                    self._answer(post_form(server.sp.acs_url, server.idp.response(server.sp, server.user), relay))
                else:
                    self.send_error(404)

            def _answer(self, body: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[IdpServer]:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.port = httpd.server_address[1]
        # Named `localhost`, another site than the console's 127.0.0.1 for the browser: the ACS is then reached by a
        # cross-site POST, as from a real IdP, and the session cookie must still be set and sent.
        self.idp.sso_url = f"http://localhost:{self.port}/sso"
        worker = threading.Thread(target=httpd.serve_forever, daemon=True)
        worker.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            worker.join(5)


def sp_of(acct: Any) -> Sp:
    """The account's SP facts, from GetSamlSsoProperties as an administrator would read them."""
    props = acct.call("GetSamlSsoProperties")["SamlSsoProperties"]
    return Sp(props["EntityId"], props["AcsUrl"])


def enable_sso(acct: Any, idp: SamlIdp, **settings: Any) -> None:
    """Upload the IdP's metadata and turn user SSO on (SetUserSsoSettings through the official SDK)."""
    from alibabacloud_ims20190815 import models as m

    acct.ims().set_user_sso_settings(
        m.SetUserSsoSettingsRequest(metadata_document=idp.metadata_b64(), sso_enabled=True, **settings)
    )


def ram_user(acct: Any, name: str, password: str = "Console-pass-864") -> str:
    """A RAM user with console logon enabled; returns its UserPrincipalName."""
    from alibabacloud_ims20190815 import models as m

    upn: str = acct.upn(name)
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=password))
    return upn
