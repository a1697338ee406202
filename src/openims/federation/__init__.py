"""Federation helpers with no database or API knowledge: SAML metadata parsing, OIDC issuer fingerprints,
and OpenIMS's own SAML service-provider metadata."""
