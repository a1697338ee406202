"""Client TLS settings shared by the network sinks."""

from __future__ import annotations

import ssl


def client_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """System trust plus `ca_file` (for private or self-signed servers); `verify=False` disables all checks."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
