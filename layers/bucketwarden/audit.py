"""Audit records in DynamoDB: one item per reported outcome, with the exact before and after.

`before` and `after` are stored as JSON text so that a rollback restores them byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.outcome import Outcome, Status

TEXT_FIELDS = (
    "bucket",
    "control",
    "reason",
    "actor",
    "source_ip",
    "event_id",
    "event_name",
    "event_time",
    "fix_time",
    "found_by",
    "mode",
    "region",
)


def audit_id_for(outcome: Outcome) -> str:
    """A fresh id, except for exemptions: the same exemption always maps to one record."""
    if outcome.status is Status.EXEMPTED:
        key = f"{outcome.bucket}|{outcome.control}|{outcome.reason}"
        return "exempt-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return str(uuid.uuid4())


def to_item(outcome: Outcome, audit_id: str) -> dict[str, dict[str, str]]:
    item = {"audit_id": {"S": audit_id}, "status": {"S": outcome.status.value}}
    for name in TEXT_FIELDS:
        value = getattr(outcome, name)
        if value is not None:
            item[name] = {"S": str(value)}
    item["before"] = {"S": json.dumps(outcome.before, sort_keys=True)}
    item["after"] = {"S": json.dumps(outcome.after, sort_keys=True)}
    return item


def record(dynamodb: Any, table: str, outcome: Outcome) -> bool:
    """Write the audit record; False when an identical exemption record already exists."""
    audit_id = audit_id_for(outcome)
    extra: dict[str, Any] = {}
    if outcome.status is Status.EXEMPTED:
        extra["ConditionExpression"] = "attribute_not_exists(audit_id)"
    try:
        dynamodb.put_item(TableName=table, Item=to_item(outcome, audit_id), **extra)
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            outcome.audit_id = audit_id
            return False
        raise
    outcome.audit_id = audit_id
    return True


# The audit table's index by bucket (template.yaml, AuditTable).
BUCKET_INDEX = "bucket-index"


def history(dynamodb: Any, table: str, bucket: str, control: str) -> list[dict[str, Any]]:
    """Every audit record of one control on one bucket: its `before` and `after`, decoded."""
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=BUCKET_INDEX,
        KeyConditionExpression="#bucket = :bucket",
        FilterExpression="#control = :control",
        ProjectionExpression="#before, #after",
        # bucket, before and after are DynamoDB reserved words.
        ExpressionAttributeNames={
            "#bucket": "bucket",
            "#control": "control",
            "#before": "before",
            "#after": "after",
        },
        ExpressionAttributeValues={":bucket": {"S": bucket}, ":control": {"S": control}},
    )
    return [
        {name: json.loads(item[name]["S"]) for name in ("before", "after") if name in item}
        for page in pages
        for item in page["Items"]
    ]
