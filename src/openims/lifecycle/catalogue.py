"""DescribeResourceLifeCycleEvents' catalogue: per service and resource type, which events create, change and
delete such a resource, derived from the action declarations (the types each action declares it touches)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openims.actions.registry import WRITE, Action
from openims.lifecycle.snapshots import SNAPSHOTS

# The service each resource type belongs to (its event's serviceName), and the label ActionTrail's console shows.
SERVICE_LABELS = {
    "Ims": "Identity Management Service",
    "Ram": "Resource Access Management",
    "Actiontrail": "ActionTrail",
}
CATEGORIES = (("Create", "Create Events"), ("Update", "Update Events"), ("Delete", "Delete Events"))


def _category(action: Action, rtype: str) -> str:
    primary = action.resource_type == rtype
    if primary and action.name.startswith(("Create", "BatchCreate", "Restore")):
        return "Create"
    if primary and action.name.startswith("Delete"):
        return "Delete"
    return "Update"


def _label(rtype: str) -> str:
    return rtype.rsplit("::", 1)[-1]


def catalogue(actions: Iterable[Action], service: str = "", resource_type: str = "") -> list[dict[str, Any]]:
    """The catalogue in ActionTrail's shape: services, each with resource types, each with the comma-separated
    event names of its Create, Update and Delete categories; narrowed to a service and/or resource type."""
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    for action in actions:
        if action.rw != WRITE:
            continue
        types = {action.resource_type, *(t for t, _ in action.resources)} - {""}
        for rtype in sorted(types):
            if rtype not in SNAPSHOTS or (resource_type and rtype != resource_type):
                continue
            name = action.service.name
            if service and name.lower() != service.lower():
                continue
            names = tree.setdefault(name, {}).setdefault(rtype, {})
            names.setdefault(_category(action, rtype), []).append(action.name)
    return [
        {
            "label": SERVICE_LABELS.get(svc, svc),
            "labelEn": SERVICE_LABELS.get(svc, svc),
            "value": svc,
            "children": [
                {
                    "label": _label(rtype),
                    "labelEn": _label(rtype),
                    "value": rtype,
                    "children": [
                        {"label": label, "labelEn": label, "value": ",".join(sorted(by_kind[kind]))}
                        for kind, label in CATEGORIES
                        if by_kind.get(kind)
                    ],
                }
                for rtype, by_kind in sorted(types.items())
            ],
        }
        for svc, types in sorted(tree.items())
    ]
