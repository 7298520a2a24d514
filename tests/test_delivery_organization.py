"""Routing as the deployed rules route: a member account's event, in organization mode only.

In a single-account stack the rules on the default bus match the stack's own account: another
account's event reaches no function (`deliver` reports it ignored). In organization mode the
hub's bus (template.yaml's `<Family>HubBusRule`s) delivers the member accounts' events, and
`replay` and the local mode route them by those rules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden_tools.delivery import deliver, routes_for
from bucketwarden_tools.routing import hub_bus_routes, routes
from tests.conftest import EVENTS, ROOT

TEMPLATE = ROOT / "template.yaml"
HUB = "123456789012"
MEMBER = "210987654321"


def event_of(account: str, name: str = "PutBucketVersioning.json") -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["account"] = account
    event["detail"]["recipientAccountId"] = account
    return event


def test_the_hub_bus_has_one_rule_per_function_with_the_functions_events() -> None:
    own = {route.function_id: route for route in routes(TEMPLATE, HUB)}
    hub = hub_bus_routes(TEMPLATE)

    assert sorted(route.function_id for route in hub) == sorted(own)
    for route in hub:
        assert route.rule_name.endswith("HubBusRule")
        assert route.code_dir == own[route.function_id].code_dir
        assert "account" not in route.pattern  # any account of the organization
        mine = own[route.function_id].pattern["detail"]["eventName"]
        assert route.pattern["detail"]["eventName"] == mine


def test_a_members_event_reaches_no_function_of_a_single_account_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCOUNT_ID", HUB)
    monkeypatch.delenv("ORGANIZATION_ID", raising=False)

    assert routes_for(event_of(MEMBER), TEMPLATE, HUB) == []
    [outcome] = deliver(event_of(MEMBER), TEMPLATE)
    assert outcome["status"] == "ignored"
    assert f"the record is for account {MEMBER}" in outcome["reason"]


def test_in_organization_mode_a_members_event_is_routed_by_the_hub_bus_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")

    routed = routes_for(event_of(MEMBER), TEMPLATE, HUB)

    assert [(r.function_id, r.rule_name) for r in routed] == [
        ("VersioningFunction", "VersioningHubBusRule")
    ]
    # The hub's own events still take the default bus's rules.
    own = routes_for(event_of(HUB), TEMPLATE, HUB)
    assert [(r.function_id, r.rule_name) for r in own] == [("VersioningFunction", "S3ConfigChange")]
