"""Idempotency claims in DynamoDB: Powertools' store, with claims that name their invocation.

CloudTrail and EventBridge deliver at least once, and Lambda retries a failed asynchronous
invocation twice with the same request id. A claim names that request id (its owner), so the
owner may claim again: a retry after a failed attempt whose claim could not be released, or
botocore repeating a claim whose answer was lost, is not mistaken for a second delivery (which
would drop the event). A failed attempt releases its claim by ending its in-progress time rather
than deleting it, so the next attempt learns that the event was tried before (`tried_before`)
and can finish what that attempt may have left half done.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code

OWNER_ATTR = "owner"


class ClaimStore(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB store whose claims name their owner (the Lambda request id).

    With `keep_results` off (the event functions) no result is stored: the engine reads the
    bucket afresh on every run, so running a finished event again changes nothing and reports
    nothing; what must be prevented is two deliveries acting at once, and the claim does that,
    at half the cost. The sweep keeps its results, so a late duplicate of a finished invocation
    sweeps nothing again.
    """

    def __init__(
        self, table_name: str, boto3_client: Any, owner: str, *, keep_results: bool = False
    ) -> None:
        super().__init__(table_name=table_name, boto3_client=boto3_client)
        self.owner = owner
        self.keep_results = keep_results
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
        # As Powertools' own put: a store configured with payload validation keeps the hash.
        if self.payload_validation_enabled and data_record.payload_hash:
            item[self.validation_key_attr] = {"S": data_record.payload_hash}
        now = dt.datetime.now()
        try:
            response = self.client.put_item(
                TableName=self.table_name,
                Item=item,
                # Free, expired, left by an attempt that ended, or our own unfinished claim.
                ConditionExpression=(
                    "attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress"
                    " AND (#in_progress_expiry < :now_in_millis OR #owner = :owner))"
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
            # Its Item (ReturnValuesOnConditionCheckFailure), which botocore's error type lacks.
            failed: dict[str, Any] = dict(error.response)
            held = failed.get("Item")
            old = self._item_to_data_record(held) if held else None
            raise IdempotencyItemAlreadyExistsError(old_data_record=old) from error
        self.tried_before = "Attributes" in response

    def _update_record(self, data_record: DataRecord) -> None:
        if data_record.status == "COMPLETED" and not self.keep_results:
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


def claim_store(
    table: str, lambda_context: Any, key_jmespath: str, ttl_seconds: int, keep_results: bool = False
) -> tuple[ClaimStore, IdempotencyConfig]:
    """A store whose claims name this invocation, and Powertools' config bounded by its time.

    Outside Lambda (the CLI's replay) every run is an invocation of its own.
    """
    owner = getattr(lambda_context, "aws_request_id", None) or str(uuid.uuid4())
    store = ClaimStore(table, client("dynamodb"), owner, keep_results=keep_results)
    config = IdempotencyConfig(event_key_jmespath=key_jmespath, expires_after_seconds=ttl_seconds)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    return store, config
