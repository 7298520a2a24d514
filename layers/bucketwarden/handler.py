"""What every family's Lambda handler does: settings, idempotency on the eventID, the engine.

The same function serves the CLI's `replay`, so an event replayed locally takes the code path it
takes in Lambda.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from bucketwarden.aws import client
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.engine import Engine
from bucketwarden.events import CloudTrailRecord, EventRejected, parse_record
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings

# CloudTrail can deliver the same event more than once, minutes apart.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60


def _mark_duplicate(response: Any, data_record: DataRecord) -> list[dict[str, Any]]:
    """A repeated delivery returns the first outcomes, marked so nobody mistakes them."""
    marked = []
    for item in response or []:
        first = Outcome.from_dict(item)
        reason = f"duplicate delivery: this event was already handled ({first.status.value})"
        marked.append({**item, "status": Status.IGNORED.value, "reason": reason, "notified": False})
    return marked


@cache
def _idempotent_runner(table: str) -> Any:
    config = IdempotencyConfig(
        event_key_jmespath="[family, event_id]",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        response_hook=_mark_duplicate,
    )
    store = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))

    @idempotent_function(data_keyword_argument="key", persistence_store=store, config=config)
    def run(key: dict[str, str], engine: Engine, record: CloudTrailRecord) -> list[dict[str, Any]]:
        return [outcome.to_dict() for outcome in engine.handle_record(record)]

    return run, config


def process(event: Any, family: str, lambda_context: Any = None) -> list[dict[str, Any]]:
    """Handle one event for one family; returns the outcomes as dictionaries."""
    settings = Settings.from_env(CONTROL_IDS)
    engine = Engine(family, settings)
    try:
        record = parse_record(event)
    except EventRejected:
        return [outcome.to_dict() for outcome in engine.handle_event(event)]
    if record.errorCode or settings.dry_run or not settings.idempotency_table:
        return [outcome.to_dict() for outcome in engine.handle_record(record)]
    run, config = _idempotent_runner(settings.idempotency_table)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    key = {"family": family, "event_id": record.eventID}
    return run(key=key, engine=engine, record=record)


def lambda_handler_for(family: str) -> Callable[[dict[str, Any], Any], list[dict[str, Any]]]:
    """The Lambda entry point of a family: structured logs with the request id, X-Ray tracing."""
    logger = Logger(service="bucketwarden")
    tracer = Tracer(service="bucketwarden")

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
        return process(event, family, context)

    return lambda_handler
