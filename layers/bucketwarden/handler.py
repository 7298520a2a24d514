"""What every family's Lambda handler does: settings, idempotency on the eventID, the engine.

The same function serves the CLI's `replay`, so an event replayed locally takes the code path it
takes in Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from bucketwarden import services
from bucketwarden.accounts import account_access
from bucketwarden.catalogue import CONTROL_IDS, controls_of
from bucketwarden.claims import claim_store
from bucketwarden.engine import Engine, ignored
from bucketwarden.events import EventRejected, parse_record
from bucketwarden.metrics import Metrics
from bucketwarden.settings import Settings
from bucketwarden.tracing import traced

Handler = Callable[[dict[str, Any], Any], list[dict[str, Any]]]

# CloudTrail can deliver the same event more than once, minutes apart.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60


def process(
    event: Any,
    family: str,
    lambda_context: Any = None,
    metrics: Metrics | None = None,
    environment: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Handle one event for one family; returns the outcomes as dictionaries. Metrics are
    printed (EMF, as Lambda reads them) unless `metrics` publishes them elsewhere.
    `environment`: the function's own variables over the process's (see FamilyHandler)."""
    settings = Settings.from_env(
        CONTROL_IDS, None if environment is None else {**os.environ, **environment}
    )
    # Lambda sets AWS_LAMBDA_FUNCTION_NAME; an in-process invocation (the local mode) names the
    # function in its context only. The name is the session name of the member roles it assumes.
    function_name = settings.function_name or getattr(lambda_context, "function_name", None)
    settings = replace(settings, function_name=function_name)
    engine = event_engine(family, settings, metrics or Metrics())
    try:
        record = parse_record(event)
    except EventRejected:
        return [outcome.to_dict() for outcome in engine.handle_event(event)]
    # An event that asks nothing of the controls costs no idempotency claim.
    if settings.dry_run or not settings.idempotency_table or engine.reason_to_skip(record):
        return [outcome.to_dict() for outcome in engine.handle_record(record)]
    key_path = "[family, event_id]"
    table = settings.idempotency_table
    store, config = claim_store(table, lambda_context, key_path, IDEMPOTENCY_TTL_SECONDS)

    @idempotent_function(data_keyword_argument="key", persistence_store=store, config=config)
    def run(key: dict[str, str]) -> list[dict[str, Any]]:
        outcomes = engine.handle_record(record, tried_before=store.tried_before)
        return [outcome.to_dict() for outcome in outcomes]

    try:
        answered: list[dict[str, Any]] = run(key={"family": family, "event_id": record.eventID})
        return answered
    except IdempotencyAlreadyInProgressError:
        reason = f"duplicate delivery: the {family} function already handled this event"
        return [ignored(reason, record).to_dict()]


def event_engine(family: str, settings: Settings, metrics: Metrics) -> Engine:
    """The engine of a family with the production audit store and reporter."""
    store = services.audit_store(settings, metrics)
    reporter = services.reporter(settings, store, metrics)
    return Engine(
        family,
        settings,
        reporter,
        store,
        accounts=account_access(settings),
        organization=services.organization(),
    )


class FamilyHandler:
    """The Lambda entry point of a family: structured logs with the request id, X-Ray tracing.

    Metrics are printed as EMF, which CloudWatch Logs reads in Lambda; `with_metrics` gives the
    same entry point publishing them elsewhere (the local mode sends them to its CloudWatch).
    """

    def __init__(
        self,
        family: str,
        metrics: Metrics | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.family = family
        self.metrics = metrics
        self.environment = environment
        # Every event needs the family's controls: load them at init (and an unknown family
        # fails the deployment's first cold start, not its first event). No other family's.
        controls_of(family)
        logger = Logger(service="bucketwarden")
        self._entry = logger.inject_lambda_context(traced(self._handle), log_event=False)

    def __call__(self, event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._entry(event, context)
        return result

    def _handle(self, event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
        return process(event, self.family, context, self.metrics, self.environment)

    def with_metrics(self, metrics: Metrics) -> FamilyHandler:
        return FamilyHandler(self.family, metrics, self.environment)

    def with_environment(self, environment: Mapping[str, str]) -> FamilyHandler:
        """The entry point with variables of its own over the process's: in Lambda each function
        has its environment; the local mode runs every function in one process (the member role
        each one assumes, MEMBER_ROLE_NAME, is its own)."""
        return FamilyHandler(self.family, self.metrics, {**(self.environment or {}), **environment})


def lambda_handler_for(family: str) -> FamilyHandler:
    """The Lambda entry point of a family (see FamilyHandler)."""
    return FamilyHandler(family)
