"""The action table: every API action is declared once, here, by the `@action` decorator on its handler.

Routing (version + name), parameter validation, authorization (RAM action and resource ARN), the audit
event's fields (eventRW, resourceType/resourceName, redaction) and docs/api.md all derive from it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openims.params import Param

if TYPE_CHECKING:
    from openims.actions.context import CallContext

READ, WRITE = "Read", "Write"


@dataclass(frozen=True)
class Service:
    name: str  # the event's serviceName
    version: str
    event_source: str
    ram_prefix: str  # RAM action namespace, e.g. ram:CreateUser


IMS = Service("Ims", "2019-08-15", "ims.aliyuncs.com", "ram")
ACTIONTRAIL = Service("Actiontrail", "2020-07-06", "actiontrail.aliyuncs.com", "actiontrail")
RAM = Service("Ram", "2015-05-01", "ram.aliyuncs.com", "ram")
SERVICES = {s.version: s for s in (IMS, ACTIONTRAIL, RAM)}

Handler = Callable[["CallContext", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    name: str
    service: Service
    rw: str
    handler: Handler
    params: tuple[Param, ...]
    resource_type: str
    # The parameter naming the resource acted on; handlers may add more with ctx.reference().
    resource_param: str | None
    # Response fields that hold secrets: shown once to the caller, never recorded.
    secrets: frozenset[str]
    # A RAM user may call it on itself (its own keys, password, MFA) when nothing else allows it.
    self_service: bool
    # Resource ARN template for policy evaluation, relative to `acs:<service>:*:<account>:`.
    arn: str
    # SDK-less actions whose shape OpenIMS defines (documented in docs/extensions.md).
    extension: bool
    doc: str
    # Slow work (a network fetch, password hashing) run once the caller is authorized, on a read-only
    # context, before the call's transaction and off the event loop; its result reaches the handler as
    # ctx.prepared. It must not depend on being right: the handler re-checks whatever it relies on.
    prepare: Callable[[Any, dict[str, Any]], Any] | None = None

    @property
    def ram_action(self) -> str:
        return f"{self.service.ram_prefix}:{self.name}"

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.secret)


_REGISTRY: dict[tuple[str, str], Action] = {}


def action(
    name: str,
    *,
    service: Service = IMS,
    rw: str = READ,
    params: tuple[Param, ...] = (),
    resource: tuple[str, str | None] = ("", None),
    secrets: tuple[str, ...] = (),
    self_service: bool = False,
    arn: str = "*",
    extension: bool = False,
    prepare: Callable[[Any, dict[str, Any]], Any] | None = None,
) -> Callable[[Handler], Handler]:
    """Declare `name` (in `service`'s API version) and register the decorated function as its handler."""

    def register(fn: Handler) -> Handler:
        key = (service.version, name)
        if key in _REGISTRY:
            raise RuntimeError(f"action {name} ({service.version}) is declared twice")
        _REGISTRY[key] = Action(
            name=name,
            service=service,
            rw=rw,
            handler=fn,
            params=params,
            resource_type=resource[0],
            resource_param=resource[1],
            secrets=frozenset(secrets),
            self_service=self_service,
            arn=arn,
            extension=extension,
            doc=inspect.cleandoc(fn.__doc__ or ""),
            prepare=prepare,
        )
        return fn

    return register


def lookup(version: str, name: str) -> Action | None:
    return _REGISTRY.get((version, name))


def all_actions() -> list[Action]:
    return sorted(_REGISTRY.values(), key=lambda a: (a.service.version, a.name))


def load() -> None:
    """Import every handler module in this package, so each `@action` registers itself."""
    import openims.actions as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("registry", "context"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
