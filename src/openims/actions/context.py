"""What a handler receives: the open transaction, the caller, and request facts. No HTTP, no audit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from openims.principal import Principal
from openims.runtime import Runtime

if TYPE_CHECKING:
    from openims.actions.registry import ActionTable


@dataclass
class CallContext:
    conn: Connection
    principal: Principal
    runtime: Runtime
    request_id: str
    source_ip: str
    user_agent: str
    now_ms: int
    # "https" when the request came over TLS (or reached a trusted proxy over TLS), for acs:SecureTransport.
    scheme: str = "http"
    # What the action's `prepare` step computed before the transaction (see registry.action).
    prepared: Any = None
    # (resourceType, resourceName) pairs for the event's referencedResources, beyond the declared one.
    resources: list[tuple[str, str]] = field(default_factory=list)
    # Told of each resource as the handler first names it, before the handler changes it: a write's
    # lifecycle tracker takes the resource's "before" state then (openims.lifecycle.tracker).
    watch: Callable[[str, str], None] | None = None
    # The action table, for the few actions that describe the others (DescribeResourceLifeCycleEvents).
    actions: ActionTable | None = None

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def reference(self, resource_type: str, name: str) -> None:
        if name and (resource_type, name) not in self.resources:
            if self.watch is not None:
                self.watch(resource_type, name)
            self.resources.append((resource_type, name))
