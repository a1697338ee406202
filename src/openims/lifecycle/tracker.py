"""The resources a call touches, from its declaration, and what a write changed in each of them.

Dispatch asks `named_by_params` for the resources the request names, `created_by` for those its response
names, and, for a write, runs a `Tracker` in the call's transaction: a resource's state is read when the call
first names it (before the handler changes it) and again after the handler; the two are diffed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from openims.actions.registry import Created
from openims.actions.users import USER
from openims.lifecycle.snapshots import SNAPSHOTS, Snapshot, user_upn

if TYPE_CHECKING:
    from openims.actions.registry import Action

Resource = tuple[str, str]


def named_by_params(
    action: Action, params: dict[str, Any], conn: Connection | None = None, account_id: str = ""
) -> list[Resource]:
    """The resources the request's parameters name, as the declaration says; a user named by its RAM `UserName`
    is given as its UserPrincipalName when the database is at hand."""
    found: list[Resource] = []
    for rtype, source in action.declared_resources:
        value = params.get(source) if isinstance(source, str) else None
        if not isinstance(value, str) or not value:
            continue
        if rtype == USER and conn is not None:
            value = user_upn(conn, account_id, value)
        if (rtype, value) not in found:
            found.append((rtype, value))
    return found


def created_by(action: Action, response: dict[str, Any]) -> list[Resource]:
    """The resources the call created, named by its response where the declaration points."""
    found: list[Resource] = []
    for rtype, source in action.declared_resources:
        if isinstance(source, Created):
            found += [(rtype, name) for name in _walk(response, source.path.split(".")) if name]
    return found


def _walk(value: Any, steps: list[str]) -> list[str]:
    if not steps:
        return [value] if isinstance(value, str) else []
    step, rest = steps[0], steps[1:]
    if step.endswith("[]"):
        items = value.get(step[:-2]) if isinstance(value, dict) else None
        return [n for item in items or [] for n in _walk(item, rest)]
    return _walk(value.get(step), rest) if isinstance(value, dict) else []


class Tracker:
    """The before and after states of the resources one write touches."""

    def __init__(self, conn: Connection, account_id: str) -> None:
        self.conn = conn
        self.account_id = account_id
        self._before: dict[Resource, Snapshot | None] = {}

    def watch(self, rtype: str, name: str) -> None:
        """Read the resource's state now, the first time the call names it."""
        snapshot = SNAPSHOTS.get(rtype)
        if snapshot is not None and (rtype, name) not in self._before:
            self._before[(rtype, name)] = snapshot(self.conn, self.account_id, name)

    def changes(self, resources: list[Resource], created: list[Resource]) -> list[dict[str, Any]]:
        """What changed in each resource: one entry per resource whose attributes differ, after the handler."""
        before: dict[tuple[str, str], Snapshot] = {}
        for (rtype, name), snap in self._before.items():
            # A resource the call created was named after it existed; its state before is none.
            if snap is not None and (rtype, name) not in created:
                before.setdefault((rtype, snap.identity), snap)
        after: dict[tuple[str, str], Snapshot] = {}
        for rtype, name in resources:
            snapshot = SNAPSHOTS.get(rtype)
            snap = snapshot(self.conn, self.account_id, name) if snapshot is not None else None
            if snap is not None:
                after.setdefault((rtype, snap.identity), snap)
        out = []
        for key in dict.fromkeys([*before, *after]):
            entry = diff(key[0], before.get(key), after.get(key))
            if entry is not None:
                out.append(entry)
        return out


def diff(rtype: str, old: Snapshot | None, new: Snapshot | None) -> dict[str, Any] | None:
    """One resource's change entry (see docs/resources.md), or None when nothing changed."""
    if old is None and new is None:
        return None
    secret = (old.secret if old else frozenset()) | (new.secret if new else frozenset())
    was, now = (old.attributes if old else {}), (new.attributes if new else {})
    attributes: list[dict[str, Any]] = []
    for name in dict.fromkeys([*was, *now]):
        before, after = was.get(name), now.get(name)
        if before == after or (old is None and _empty(after)) or (new is None and _empty(before)):
            continue
        if name in secret:
            attributes.append({"attribute": name, "changed": True})
        else:
            attributes.append({"attribute": name, "old": before, "new": after})
    if not attributes:
        return None
    current = new or old
    assert current is not None
    entry: dict[str, Any] = {
        "resourceType": rtype,
        "resourceName": current.name,
        "change": "Create" if old is None else "Delete" if new is None else "Update",
        "attributes": attributes,
    }
    if old is not None and new is not None and old.name != new.name:
        entry["formerName"] = old.name
    return entry


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False
