"""Deliver an event as EventBridge and Lambda would: match the template's rules, invoke handlers."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bucketwarden.events import as_eventbridge_event, parse_record
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import account_id_from_env
from bucketwarden_tools.routing import (
    DEFAULT_TEMPLATE,
    Route,
    hub_bus_routes,
    load_handler,
    matches,
    matching_routes,
)


@dataclass
class LambdaContextStub:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
            )

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def _logs_to_stderr() -> None:
    # Powertools logs to stdout (CloudWatch Logs in Lambda); on a terminal stdout is the report.
    for handler in logging.getLogger("bucketwarden").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def invoke(
    route: Route, event: dict[str, Any], handler: Any = None, function_name: str | None = None
) -> list[dict[str, Any]]:
    """Invoke the route's function (its handler as imported, unless `handler` is given), named
    `function_name` in its context (the session name of the member roles it assumes)."""
    handler = handler or load_handler(route)
    _logs_to_stderr()
    name = function_name or f"bucketwarden-{route.folder}"
    outcomes: list[dict[str, Any]] = handler(event, LambdaContextStub(function_name=name))
    return outcomes


def deliver(
    event_or_record: dict[str, Any], template: Path = DEFAULT_TEMPLATE
) -> list[dict[str, Any]]:
    """Route one event (or bare CloudTrail record) and return every handler's outcomes."""
    event = as_eventbridge_event(event_or_record)
    account_id = account_id_from_env(os.environ)
    routes = routes_for(event, template, account_id)
    if not routes:
        record = parse_record(event)
        reason = record.not_for(account_id) or (
            f"no rule in {template.name} matches {record.eventName}"
        )
        outcome = Outcome(
            bucket=record.bucket_name,
            control=None,
            status=Status.IGNORED,
            reason=reason,
            event_id=record.eventID,
            event_name=record.eventName,
        )
        return [outcome.to_dict()]
    return [outcome for route in routes for outcome in invoke(route, event)]


def routes_for(event: dict[str, Any], template: Path, account_id: str | None) -> list[Route]:
    """The functions the deployed rules deliver `event` to: the rules on the default bus of
    the hub's account, or, in organization mode, those of the hub's bus for a member's event."""
    routes = matching_routes(event, template, account_id)
    if not routes and _from_a_member(event, account_id):
        routes = [route for route in hub_bus_routes(template) if matches(route, event)]
    return routes


def _from_a_member(event: dict[str, Any], account_id: str | None) -> bool:
    """An event of another account than the hub's, in organization mode (ORGANIZATION_ID set):
    a single-account stack's rules never see it, so it stays ignored there."""
    organization = os.environ.get("ORGANIZATION_ID", "").strip()
    account = event.get("account")
    return bool(organization) and account_id is not None and account != account_id
