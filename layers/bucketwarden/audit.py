"""Audit records in DynamoDB: one item per reported outcome, with the exact before and after.

`before` and `after` are stored as JSON text so that a rollback restores them byte for byte.
Every record written carries an integrity tag, and every read that drives a decision (the flap
breaker's `recent`, the recorded baseline's `history`, `get_record` for a prior attempt or a
rollback) keeps only records whose tag verifies (integrity.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from bucketwarden import integrity
from bucketwarden.aws import error_code
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.settings import Settings

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
    # What `bucket` names: a bucket, an account or an access point (its ARN).
    "scope",
    # A hold of the flap breaker, carried from held record to held record (flap.py).
    "held_since",
    "held_told_at",
    "held_drifts",
)


# The status of a write-ahead record: a fix about to be made, whose result is not known yet.
PENDING = "pending"


def audit_id_for(outcome: Outcome) -> str:
    """One id per event and control, exempted drift included: every attempt at an event
    (Lambda's retries, a second delivery) writes the same record, from the write-ahead `pending`
    to its end, and every event has its own. Without an event (the sweep), a fresh id."""
    if outcome.event_id:
        key = f"{outcome.event_id}|{outcome.control}"
        return "event-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return str(uuid.uuid4())


def to_item(outcome: Outcome, audit_id: str, status: str | None = None) -> integrity.Item:
    item: integrity.Item = {
        "audit_id": {"S": audit_id},
        "status": {"S": status or outcome.status.value},
        # The bucket index's sort key: a bucket's records in time order.
        "recorded_at": {"S": utc_now().isoformat(timespec="milliseconds")},
    }
    if outcome.flapping:
        item["flapping"] = {"BOOL": True}
    # Sent to people (or about to be): repeated exempted drift is notified at most once a day.
    if outcome.notified:
        item["notified"] = {"BOOL": True}
    for name in TEXT_FIELDS:
        value = getattr(outcome, name)
        if value is not None:
            item[name] = {"S": str(value)}
    # Keys stay in the order S3 returned them (a policy's statements keep their own key order):
    # a rollback writes back this very document.
    item["before"] = {"S": json.dumps(outcome.before)}
    item["after"] = {"S": json.dumps(outcome.after)}
    return item


def write_ahead(
    dynamodb: Any, table: str, outcome: Outcome, planned: Any, *, settings: Settings
) -> None:
    """Record a fix before making it: `before` as read, `after` as planned, status `pending`.

    If the write lands but the invocation fails before the fix is verified and recorded (a lost
    answer, a timeout), the record still holds the exact prior state, and the next attempt at
    the event completes it (see `prior_record`). The outcome keeps the id for its final record.
    """
    outcome.audit_id = outcome.audit_id or audit_id_for(outcome)
    pending = replace(outcome, after=planned)
    key = settings.audit_mac_key
    try:
        # An earlier attempt's finished fix stays: a late second delivery of the event that
        # finds the bucket drifted again makes a fix (and a record) of its own.
        dynamodb.put_item(
            TableName=table,
            Item=integrity.sealed(to_item(pending, outcome.audit_id, PENDING), key),
            ConditionExpression="attribute_not_exists(audit_id) OR #status <> :remediated",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":remediated": {"S": Status.REMEDIATED.value}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        outcome.audit_id = str(uuid.uuid4())
        item = integrity.sealed(to_item(pending, outcome.audit_id, PENDING), key)
        dynamodb.put_item(TableName=table, Item=item)


def prior_record(
    dynamodb: Any, table: str, outcome: Outcome, *, settings: Settings
) -> dict[str, Any] | None:
    """What an earlier attempt at the same event recorded for the outcome's control, if any."""
    if not outcome.event_id or not outcome.control:
        return None
    return get_record(dynamodb, table, audit_id_for(outcome), settings=settings)


def record(dynamodb: Any, table: str, outcome: Outcome, *, settings: Settings) -> bool:
    """Write the audit record (always True: every event's outcome has its own record).

    An event's record replaces what an earlier attempt at the same event wrote (its write-ahead
    record, or the same outcome: then the notification that may not have gone out is sent
    again, at least once, never lost).
    """
    audit_id = outcome.audit_id or audit_id_for(outcome)
    outcome.audit_id = audit_id
    item = integrity.sealed(to_item(outcome, audit_id), settings.audit_mac_key)
    dynamodb.put_item(TableName=table, Item=item)
    return True


# The audit table's index by bucket, sorted by `recorded_at` (template.yaml, AuditTable).
BUCKET_INDEX = "bucket-time-index"


# Which records a decision needs: the others are not verified (each check may cost a KMS call).
Relevant = Callable[[dict[str, Any]], bool]


def _control_records(
    dynamodb: Any,
    table: str,
    bucket: str,
    control: str,
    fields: tuple[str, ...],
    *,
    settings: Settings,
    since: datetime | None = None,
    relevant: Relevant | None = None,
) -> list[dict[str, Any]]:
    """One control's trusted records on one bucket (oldest first, since `since`), `fields`
    decoded. Records `relevant` says the decision does not need are left out unverified.
    Without a key nothing can be trusted, and the table is not asked."""
    if not settings.audit_mac_key:
        integrity.warn_no_key()
        return []
    key = "#bucket = :bucket" + (" AND recorded_at >= :since" if since else "")
    values = {":bucket": {"S": bucket}, ":control": {"S": control}}
    if since:
        values[":since"] = {"S": since.isoformat(timespec="milliseconds")}
    # Whole items: the integrity tag covers every attribute. (`bucket` is a reserved word.)
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        IndexName=BUCKET_INDEX,
        KeyConditionExpression=key,
        FilterExpression="#control = :control",
        ExpressionAttributeNames={"#bucket": "bucket", "#control": "control"},
        ExpressionAttributeValues=values,
    )
    items = [item for page in pages for item in page["Items"]]
    if relevant is not None:
        items = [item for item in items if relevant(decoded(item))]
    found = [decoded(item) for item in integrity.trusted(dynamodb, table, items, settings)]
    return [{name: record[name] for name in fields if name in record} for record in found]


def history(
    dynamodb: Any,
    table: str,
    bucket: str,
    control: str,
    *,
    settings: Settings,
    relevant: Relevant | None = None,
) -> list[dict[str, Any]]:
    """Every trusted audit record of one control on one bucket: its `before` and `after`."""
    fields = ("before", "after")
    return _control_records(
        dynamodb, table, bucket, control, fields, settings=settings, relevant=relevant
    )


def recent(
    dynamodb: Any, table: str, bucket: str, control: str, since: datetime, *, settings: Settings
) -> list[dict[str, Any]]:
    """The trusted records of one control on one bucket since `since`, oldest first: status,
    actor and the flap breaker's hold. A record dated in the future is never trusted (it would
    match every window)."""
    held = ("held_since", "held_told_at", "held_drifts")
    fields = ("status", "actor", "recorded_at", "flapping", *held)
    return [
        {
            "status": record["status"],
            "actor": record.get("actor"),
            "recorded_at": record["recorded_at"],
            "flapping": record.get("flapping", False),
            **{name: record.get(name) for name in held},
        }
        for record in _control_records(
            dynamodb, table, bucket, control, fields, settings=settings, since=since
        )
    ]


def recent_notices(
    dynamodb: Any, table: str, bucket: str, control: str, since: datetime, *, settings: Settings
) -> list[dict[str, Any]]:
    """One control's trusted records on one bucket since `since`: id, status and whether
    notified (a forged `notified` record silences nothing)."""
    fields = ("audit_id", "status", "notified", "recorded_at")
    return _control_records(
        dynamodb, table, bucket, control, fields, settings=settings, since=since
    )


def grant_records(
    dynamodb: Any, table: str, bucket: str, control: str, *, settings: Settings
) -> list[dict[str, Any]]:
    """The trusted exemption records of one bucket (`control` is their pseudo-control), oldest
    first: each `after` holds the grant in effect then (None once removed). A forged earlier
    grant cannot move an exemption's clock."""
    fields = ("audit_id", "after", "recorded_at")
    return _control_records(dynamodb, table, bucket, control, fields, settings=settings)


# -- reading records back: history and rollback ------------------------------------------------

# The status of the record a rollback writes (never an engine outcome's).
ROLLED_BACK = "rolled-back"


def decoded(item: integrity.Item) -> dict[str, Any]:
    """An item as plain values (text, flags), with `before` and `after` parsed from their JSON.
    The integrity tag is left out: it is checked on the item, never shown or compared."""
    plain: dict[str, Any] = {
        name: next(iter(value.values())) for name, value in item.items() if name != integrity.MAC
    }
    for side in ("before", "after"):
        if side in plain:
            plain[side] = json.loads(plain[side])
    return plain


class UntrustedRecord(Exception):
    """A record that may not drive a decision: the message says why."""


def _item(dynamodb: Any, table: str, audit_id: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table, Key={"audit_id": {"S": audit_id}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def _trusted_item(
    dynamodb: Any, table: str, audit_id: str, settings: Settings
) -> dict[str, Any] | None:
    """The item as stored; None if there is none; UntrustedRecord if it fails verification
    (reported once, as every untrusted record) or no key is configured to verify it."""
    item = _item(dynamodb, table, audit_id)
    if item is None:
        return None
    why = integrity.why_untrusted(dynamodb, table, item, settings)
    if why is not None:
        raise UntrustedRecord(f"audit record {audit_id} is not trusted: {why}")
    return item


def checked_record(
    dynamodb: Any, table: str, audit_id: str, *, settings: Settings
) -> dict[str, Any] | None:
    """The record, decoded, if it exists (None if not) and verifies (UntrustedRecord if not)."""
    item = _trusted_item(dynamodb, table, audit_id, settings)
    return None if item is None else decoded(item)


def get_record(
    dynamodb: Any, table: str, audit_id: str, *, settings: Settings
) -> dict[str, Any] | None:
    """The record if it exists and verifies; None otherwise (an untrusted one is reported)."""
    try:
        return checked_record(dynamodb, table, audit_id, settings=settings)
    except UntrustedRecord:
        return None


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
    for name in ("bucket", "control", "scope", "region"):
        if original.get(name) is not None:
            item[name] = {"S": str(original[name])}
    dynamodb.put_item(TableName=table, Item=integrity.sealed(item, settings.audit_mac_key))
    marks = {"rolled_back_by": {"S": audit_id}, "rolled_back_at": {"S": recorded_at}}
    _mark_rolled_back(dynamodb, table, str(original["audit_id"]), marks, settings)
    return audit_id


def _mark_rolled_back(
    dynamodb: Any, table: str, original_id: str, marks: dict[str, Any], settings: Settings
) -> None:
    """Name the rollback in the original record and tag it again. The record is read and
    verified again first (nothing else may slip in under the new tag), and written whole only
    if its tag is still the one verified."""
    item = _trusted_item(dynamodb, table, original_id, settings)
    if item is None:
        raise UntrustedRecord(f"audit record {original_id} was deleted during the rollback")
    marked = {**item, **marks}
    dynamodb.put_item(
        TableName=table,
        Item=integrity.sealed(marked, settings.audit_mac_key),
        ConditionExpression="#mac = :verified",
        ExpressionAttributeNames={"#mac": integrity.MAC},
        ExpressionAttributeValues={":verified": item[integrity.MAC]},
    )
