"""The audit table read back for people: its history, and the records a rollback writes.

The engine's reads and writes are the runtime's (bucketwarden.audit.AuditStore); these are the
CLI's (`history`, `rollback`), with the same integrity tags: a record is verified before a
rollback rests on it, and whatever a rollback changes is tagged again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bucketwarden import integrity, services
from bucketwarden.audit import BUCKET_INDEX, AuditStore, UntrustedRecord, decoded
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import utc_now
from bucketwarden.settings import Settings

# The status of the record a rollback writes (never an engine outcome's).
ROLLED_BACK = "rolled-back"


def store(dynamodb: Any, table: str, settings: Settings) -> AuditStore:
    """The audit table `table`, read with `dynamodb`, its records verified with the key of
    `settings` (an untrusted record is reported as the functions report it)."""
    return services.audit_store(replace(settings, audit_table=table), Metrics(), dynamodb)


def when(record: dict[str, Any]) -> str:
    """When a record was written; records from before `recorded_at` fall back to their times."""
    found = record.get("recorded_at") or record.get("fix_time") or record.get("event_time")
    return str(found or "")


def _expression(
    names: dict[str, str], values: dict[str, Any], control: str | None
) -> dict[str, Any]:
    """A request's attribute names and values, and a filter on the control when one is given."""
    if control is None:
        return {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
    return {
        "FilterExpression": "#control = :control",
        "ExpressionAttributeNames": {**names, "#control": "control"},
        "ExpressionAttributeValues": {**values, ":control": {"S": control}},
    }


def bucket_records(
    dynamodb: Any, table: str, bucket: str, control: str | None = None
) -> Iterator[dict[str, Any]]:
    """A bucket's (or account's, or access point's) records, newest first, page by page."""
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=BUCKET_INDEX,
        KeyConditionExpression="#bucket = :bucket",
        ScanIndexForward=False,  # the index is sorted by recorded_at
        **_expression({"#bucket": "bucket"}, {":bucket": {"S": bucket}}, control),
    )
    for page in pages:
        yield from (decoded(item) for item in page["Items"])


def all_records(dynamodb: Any, table: str, control: str | None = None) -> list[dict[str, Any]]:
    """Every record of the table (a paginated Scan, in no order), sorted newest first."""
    filtered = _expression({}, {}, control) if control else {}
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, **filtered)
    records = [decoded(item) for page in pages for item in page["Items"]]
    return sorted(records, key=when, reverse=True)


def record_rollback(
    dynamodb: Any,
    table: str,
    original: dict[str, Any],
    *,
    replaced: Any,
    restored: Any,
    actor: str,
    settings: Settings,
) -> str:
    """Record a rollback of `original` (`replaced` → `restored`) and mark `original` with it.

    The rollback is a change like any other: it gets its own record, with the state it replaced
    as `before`, and the record it undid names it in `rolled_back_by` (and is tagged again).
    """
    audit_id = str(uuid.uuid4())
    recorded_at = utc_now().isoformat(timespec="milliseconds")
    item: integrity.Item = {
        "audit_id": {"S": audit_id},
        "status": {"S": ROLLED_BACK},
        "recorded_at": {"S": recorded_at},
        "fix_time": {"S": recorded_at},
        "reason": {"S": f"rolled back {original['audit_id']}: the configuration before that fix"},
        "actor": {"S": actor},
        "found_by": {"S": "rollback"},
        "rolls_back": {"S": str(original["audit_id"])},
        "before": {"S": json.dumps(replaced)},
        "after": {"S": json.dumps(restored)},
    }
    for name in ("bucket", "control", "scope", "account", "region"):
        if original.get(name) is not None:
            item[name] = {"S": str(original[name])}
    records = store(dynamodb, table, settings)
    dynamodb.put_item(TableName=table, Item=records.integrity.sealed(item))
    marks = {"rolled_back_by": {"S": audit_id}, "rolled_back_at": {"S": recorded_at}}
    _mark_rolled_back(records, str(original["audit_id"]), marks)
    return audit_id


def _mark_rolled_back(records: AuditStore, original_id: str, marks: dict[str, Any]) -> None:
    """Name the rollback in the original record and tag it again. The record is read and
    verified again first (nothing else may slip in under the new tag), and written whole only
    if its tag is still the one verified."""
    item = records.trusted_item(original_id)
    if item is None:
        raise UntrustedRecord(f"audit record {original_id} was deleted during the rollback")
    marked = {**item, **marks}
    records.dynamodb.put_item(
        TableName=records.table_name,
        Item=records.integrity.sealed(marked),
        ConditionExpression="#mac = :verified",
        ExpressionAttributeNames={"#mac": integrity.MAC},
        ExpressionAttributeValues={":verified": item[integrity.MAC]},
    )
