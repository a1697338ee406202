"""OAuth 2.0 and OpenID Connect for applications: OpenIMS as the authorization server of the applications that
`CreateApplication` declares (docs/oauth.md). The protocol is Authlib's; this package supplies its storage
(hashed codes and tokens, consents, sealed signing keys), the rules of Alibaba Cloud's applications (types,
scopes, redirect URIs, secrets) and the events of every step."""
