"""What every family's Lambda handler does: settings, idempotency on the eventID, the engine.

The same function serves the CLI's `replay`, so an event replayed locally takes the code path it
takes in Lambda.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.engine import Engine, ignored
from bucketwarden.events import EventRejected, parse_record
from bucketwarden.settings import Settings

Handler = Callable[[dict[str, Any], Any], list[dict[str, Any]]]

# CloudTrail can deliver the same event more than once, minutes apart.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
OWNER_ATTR = "owner"


class ClaimStore(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB store, claiming an event for one invocation and storing no result.

    The engine reads the bucket afresh on every run, so running a finished event again changes
    nothing and reports nothing: what idempotency must prevent is two deliveries acting at once,
    and the claim (Powertools' conditional in-progress put) does that. Skipping the completion
    write halves the cost.

    The claim names its owner, the Lambda request id, which Lambda keeps across the retries of
    an asynchronous invocation. The owner may claim again: a retry after a failed attempt whose
    claim could not be released, or botocore repeating a claim whose answer was lost, is not
    mistaken for a second delivery (which would drop the event). A failed attempt releases its
    claim by ending its in-progress time rather than deleting it, so that the next attempt, by
    the owner or by another delivery, learns that the event was tried before (`tried_before`)
    and can finish what that attempt may have left half done.
    """

    def __init__(self, table_name: str, boto3_client: Any, owner: str) -> None:
        super().__init__(table_name=table_name, boto3_client=boto3_client)
        self.owner = owner
        self.tried_before = False

    def _put_record(self, data_record: DataRecord) -> None:
        item = {
            **self._get_key(data_record.idempotency_key),
            self.expiry_attr: {"N": str(data_record.expiry_timestamp)},
            self.status_attr: {"S": data_record.status},
            OWNER_ATTR: {"S": self.owner},
        }
        if data_record.in_progress_expiry_timestamp is not None:
            expiry = str(data_record.in_progress_expiry_timestamp)
            item[self.in_progress_expiry_attr] = {"N": expiry}
        now = dt.datetime.now()
        try:
            response = self.client.put_item(
                TableName=self.table_name,
                Item=item,
                # Free, expired, left by an attempt that ended, or our own.
                ConditionExpression=(
                    "attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress"
                    " AND #in_progress_expiry < :now_in_millis) OR #owner = :owner"
                ),
                ExpressionAttributeNames={
                    "#id": self.key_attr,
                    "#expiry": self.expiry_attr,
                    "#in_progress_expiry": self.in_progress_expiry_attr,
                    "#status": self.status_attr,
                    "#owner": OWNER_ATTR,
                },
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now.timestamp()))},
                    ":now_in_millis": {"N": str(int(now.timestamp() * 1000))},
                    ":inprogress": {"S": "INPROGRESS"},
                    ":owner": {"S": self.owner},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            held = dict(error.response).get("Item")
            old = self._item_to_data_record(held) if held else None
            raise IdempotencyItemAlreadyExistsError(old_data_record=old) from error
        self.tried_before = "Attributes" in response

    def _update_record(self, data_record: DataRecord) -> None:
        if data_record.status == "COMPLETED":
            return
        super()._update_record(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._get_key(data_record.idempotency_key),
                UpdateExpression="SET #in_progress_expiry = :ended",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={
                    "#in_progress_expiry": self.in_progress_expiry_attr,
                    "#owner": OWNER_ATTR,
                },
                ExpressionAttributeValues={":ended": {"N": "0"}, ":owner": {"S": self.owner}},
            )
        except ClientError as error:
            # Our claim had expired and another delivery holds the event now: it is theirs.
            if error_code(error) != "ConditionalCheckFailedException":
                raise


def process(event: Any, family: str, lambda_context: Any = None) -> list[dict[str, Any]]:
    """Handle one event for one family; returns the outcomes as dictionaries."""
    settings = Settings.from_env(CONTROL_IDS)
    engine = Engine(family, settings)
    try:
        record = parse_record(event)
    except EventRejected:
        return [outcome.to_dict() for outcome in engine.handle_event(event)]
    # An event that asks nothing of the controls costs no idempotency claim.
    if settings.dry_run or not settings.idempotency_table or engine.reason_to_skip(record):
        return [outcome.to_dict() for outcome in engine.handle_record(record)]
    # Outside Lambda (replay) every run is an invocation of its own.
    owner = getattr(lambda_context, "aws_request_id", None) or str(uuid.uuid4())
    store = ClaimStore(settings.idempotency_table, client("dynamodb"), owner)
    config = IdempotencyConfig(
        event_key_jmespath="[family, event_id]", expires_after_seconds=IDEMPOTENCY_TTL_SECONDS
    )
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    @idempotent_function(data_keyword_argument="key", persistence_store=store, config=config)
    def run(key: dict[str, str]) -> list[dict[str, Any]]:
        outcomes = engine.handle_record(record, tried_before=store.tried_before)
        return [outcome.to_dict() for outcome in outcomes]

    try:
        return run(key={"family": family, "event_id": record.eventID})
    except IdempotencyAlreadyInProgressError:
        reason = f"duplicate delivery: the {family} function already handled this event"
        return [ignored(reason, record).to_dict()]


def traced(handler: Handler) -> Handler:
    # Powertools' Tracer loads the X-Ray SDK (half a second of cold start) even when
    # POWERTOOLS_TRACE_DISABLED is set, so it is only created when tracing is wanted.
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true"}:
        return handler
    tracer = Tracer(service="bucketwarden")
    return tracer.capture_lambda_handler(handler, capture_response=False)


def lambda_handler_for(family: str) -> Handler:
    """The Lambda entry point of a family: structured logs with the request id, X-Ray tracing."""
    logger = Logger(service="bucketwarden")

    def lambda_handler(event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
        return process(event, family, context)

    return logger.inject_lambda_context(traced(lambda_handler), log_event=False)
