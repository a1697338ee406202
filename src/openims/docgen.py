"""Generates docs/api.md from the action table, so the reference can never drift from the code.

python -m openims.docgen > docs/api.md
"""

from __future__ import annotations

from openims.actions import registry
from openims.actions.table import ACTIONS


def render() -> str:
    actions = ACTIONS.all()
    out = [
        "# API reference",
        "",
        "Generated from the action table by `python -m openims.docgen > docs/api.md`; do not edit by hand.",
        "Every action is `POST /` (or GET) with its parameters in the query string or a form body, signed with",
        "ACS3-HMAC-SHA256 (V3) or HMAC-SHA1 (v2). Every call, successful or not, is recorded as an ActionTrail event.",
        (
            "Actions marked *OpenIMS-defined* have no official SDK method; their shape is documented in "
            "docs/extensions.md."
        ),
        "",
    ]
    for service in (registry.IMS, registry.ACTIONTRAIL, registry.RAM):
        mine = [a for a in actions if a.service is service]
        if not mine:
            continue
        out += [
            f"## {service.name} ({service.version}, eventSource `{service.event_source}`)",
            "",
            "| action | read/write | RAM action | resource type | description |",
            "|---|---|---|---|---|",
        ]
        for a in mine:
            summary = " ".join(a.doc.split("\n\n")[0].split()).replace("|", "\\|")
            marker = " *OpenIMS-defined*" if a.extension else ""
            out.append(
                f"| [{a.name}](#{a.name.lower()}){marker} | {a.rw} | `{a.ram_action}` | {a.resource_type or '-'} | "
                f"{summary} |"
            )
        out.append("")
        for a in mine:
            out += [f"### {a.name}", "", a.doc or "", ""]
            if a.params:
                out += ["| parameter | type | required | limits |", "|---|---|---|---|"]
                for p in a.params:
                    secret = " (secret: never recorded)" if p.secret else ""
                    out.append(f"| {p.name} | {p.type_name()} | {'yes' if p.required else ''} | {p.limits()}{secret} |")
                out.append("")
            named = [f"{t} ({s if isinstance(s, str) else 'created: ' + s.path})" for t, s in a.declared_resources]
            if named:
                out += [f"Resources recorded in its event: {', '.join(named)}.", ""]
            if a.sensitive:
                out += ["A sensitive action (LookupEvents `SensitiveAction=true`).", ""]
            if a.secrets:
                out += [f"Response fields shown once and redacted in events: {', '.join(sorted(a.secrets))}.", ""]
            if isinstance(a.self_service, str):
                gate = f"while the security preference `{a.self_service}` is on"
                out += [f"A RAM user may call this on itself without a policy (self-service) {gate}.", ""]
            elif a.self_service:
                out += ["A RAM user may call this on itself without a policy (self-service).", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
