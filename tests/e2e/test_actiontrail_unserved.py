"""The ActionTrail actions OpenIMS does not serve, because they have no meaning for a self-hosted IMS (data-event
selectors, console scenes and search templates, governance metrics, regions): the official SDK gets an honest
InvalidAction.NotFound (404), never an empty success, and the attempt is audited like any failed call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_actiontrail20200706.client import Client
from Tea.exceptions import TeaException

from tests.support import Account

UNSERVED: dict[str, Callable[[Client], Any]] = {
    "PutDataEventSelector": lambda c: c.put_data_event_selector(
        at.PutDataEventSelectorRequest(trail_name="any-trail", event_selectors="[]")
    ),
    "GetDataEventSelector": lambda c: c.get_data_event_selector(at.GetDataEventSelectorRequest(trail_name="any-trail")),
    "ListDataEventSelectors": lambda c: c.list_data_event_selectors(at.ListDataEventSelectorsRequest()),
    "DeleteDataEventSelector": lambda c: c.delete_data_event_selector(
        at.DeleteDataEventSelectorRequest(trail_name="any-trail")
    ),
    "ListDataEventServices": lambda c: c.list_data_event_services(at.ListDataEventServicesRequest()),
    "DescribeScenes": lambda c: c.describe_scenes(at.DescribeScenesRequest()),
    "DescribeSearchTemplates": lambda c: c.describe_search_templates(at.DescribeSearchTemplatesRequest()),
    "GetGovernanceMetrics": lambda c: c.get_governance_metrics(),
    "DescribeRegions": lambda c: c.describe_regions(at.DescribeRegionsRequest()),
    "GetGlobalEventsStorageRegion": lambda c: c.get_global_events_storage_region(),
    "UpdateGlobalEventsStorageRegion": lambda c: c.update_global_events_storage_region(
        at.UpdateGlobalEventsStorageRegionRequest(storage_region="cn-hangzhou")
    ),
}


@pytest.mark.parametrize("name", sorted(UNSERVED))
def test_unserved_actions_answer_not_found_and_are_audited(acct: Account, name: str) -> None:
    with pytest.raises(TeaException) as info:
        UNSERVED[name](acct.trail())
    assert (info.value.code, info.value.status_code) == ("InvalidAction.NotFound", 404)
    recorded = acct.events(EventName=name)
    assert [e["errorCode"] for e in recorded] == ["InvalidAction.NotFound"]
