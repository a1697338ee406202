"""Declaring actions: every API action is declared once, by the `@action` decorator on its handler, and
actions/table.py gathers the declarations into the action table.

Routing (version + name), parameter validation, authorization (RAM action and resource ARN, self-service),
the audit event's fields (eventRW, resourceType/resourceName, redaction, failure effects) and docs/api.md all
derive from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from openims.params import Param

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from openims.actions.context import CallContext
    from openims.errors import ApiError
    from openims.principal import Principal

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
class Created:
    """A resource the call creates, named by a dotted path in its response (`AccessKey.AccessKeyId`; a `[]`
    step walks a list): it had no state before the call."""

    path: str


# Where a declared resource's name comes from: a request parameter (by name) or the response (Created).
ResourceSource = str | Created
FailureEffect = Callable[["Connection", "Principal", "ApiError"], None]
Resolver = Callable[["CallContext", dict[str, Any]], dict[str, Any]]


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
    # A RAM user may call it on itself (its own keys, password, MFA) when nothing else allows it: True, or the
    # name of the security preference (SetSecurityPreference parameter) that must be on for it.
    self_service: bool | str
    # Further resources the call touches, beyond `resource`: (resourceType, source) pairs, so that the event
    # names them all (AddUserToGroup: the group and the user) and their changes are recorded.
    resources: tuple[tuple[str, ResourceSource], ...]
    # ActionTrail's SensitiveAction: changes to credentials, MFA, policies and security settings.
    sensitive: bool
    # Resource ARN template for policy evaluation, relative to `acs:<service>:*:<account>:`.
    arn: str
    # SDK-less actions whose shape OpenIMS defines (documented in docs/extensions.md).
    extension: bool
    doc: str
    # Slow work (a network fetch, password hashing) run once the caller is authorized, on a read-only
    # context, before the call's transaction and off the event loop; its result reaches the handler as
    # ctx.prepared. It must not depend on being right: the handler re-checks whatever it relies on.
    prepare: Callable[[Any, dict[str, Any]], Any] | None = None
    # What a failed call still changes, run by dispatch in the failure event's transaction (a wrong
    # OldPassword counts toward the sign-in lockout).
    on_failure: FailureEffect | None = None
    # Names the resource the handler will act on, once, before authorization: returns the parameters with
    # what an omitted or loosely written parameter leaves open filled in as the handler will find it (the
    # PolicyType of a policy named without one), so the ARN authorized is the resource acted on.
    resolve: Resolver | None = None

    @property
    def ram_action(self) -> str:
        return f"{self.service.ram_prefix}:{self.name}"

    @property
    def declared_resources(self) -> tuple[tuple[str, ResourceSource], ...]:
        """Every resource the declaration names: the primary one (when named by a parameter) and the others."""
        first = ((self.resource_type, self.resource_param),) if self.resource_type and self.resource_param else ()
        return first + self.resources

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.secret)


# The attribute of a handler function that holds its declaration.
_DECLARATION = "openims_action"


def action(
    name: str,
    *,
    service: Service = IMS,
    rw: str = READ,
    params: tuple[Param, ...] = (),
    resource: tuple[str, str | None] = ("", None),
    resources: tuple[tuple[str, ResourceSource], ...] = (),
    sensitive: bool = False,
    secrets: tuple[str, ...] = (),
    self_service: bool | str = False,
    arn: str = "*",
    extension: bool = False,
    prepare: Callable[[Any, dict[str, Any]], Any] | None = None,
    on_failure: FailureEffect | None = None,
    resolve: Resolver | None = None,
) -> Callable[[Handler], Handler]:
    """Declare `name` (in `service`'s API version) with the decorated function as its handler. The declaration
    is attached to the function; actions/table.py collects the declarations of the modules it lists."""

    def declare(fn: Handler) -> Handler:
        setattr(
            fn,
            _DECLARATION,
            Action(
                name=name,
                service=service,
                rw=rw,
                handler=fn,
                params=params,
                resource_type=resource[0],
                resource_param=resource[1],
                resources=resources,
                sensitive=sensitive,
                secrets=frozenset(secrets),
                self_service=self_service,
                arn=arn,
                extension=extension,
                doc=inspect.cleandoc(fn.__doc__ or ""),
                prepare=prepare,
                on_failure=on_failure,
                resolve=resolve,
            ),
        )
        return fn

    return declare


def declaration(handler: Handler) -> Action:
    """The declaration of a handler function."""
    found = getattr(handler, _DECLARATION, None)
    if not isinstance(found, Action):
        raise TypeError(f"{handler!r} is not an @action handler")
    return found


class ActionTable:
    """Every declared action, by API version and name, from the handler modules given."""

    def __init__(self, modules: Iterable[ModuleType]) -> None:
        self._by_key: dict[tuple[str, str], Action] = {}
        for module in modules:
            for value in vars(module).values():
                found = getattr(value, _DECLARATION, None)
                # A handler imported into another module is declared where it is defined.
                if isinstance(found, Action) and getattr(value, "__module__", None) == module.__name__:
                    key = (found.service.version, found.name)
                    if key in self._by_key:
                        raise RuntimeError(f"action {found.name} ({found.service.version}) is declared twice")
                    self._by_key[key] = found

    def lookup(self, version: str, name: str) -> Action | None:
        return self._by_key.get((version, name))

    def all(self) -> list[Action]:
        return sorted(self._by_key.values(), key=lambda a: (a.service.version, a.name))
