"""Audit records in DynamoDB: one item per reported outcome, with the exact before and after.

`before` and `after` are stored as JSON text so that a rollback restores them byte for byte.
Every record written carries an integrity tag, and every read that drives a decision (the flap
breaker's `recent`, the recorded baseline's `history`, `get_record` for a prior attempt or a
rollback) keeps only records whose tag verifies (integrity.py).

`AuditStore` is the one way in: it is given its DynamoDB client, its table (None: no audit
table, nothing is recorded or read) and the integrity check with its KMS client.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden import integrity
from bucketwarden.aws import error_code
from bucketwarden.integrity import Integrity
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

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
    # Where the subject is (absent from records written before organization mode: the tag
    # covers the attributes a record has, so those still verify).
    "account",
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
    # What people were told beside the status (an exemption that expired, a flap hold's advice):
    # `history` shows it with the record.
    if outcome.warnings:
        item["warnings"] = {"S": json.dumps(outcome.warnings)}
    return item


# The audit table's index by bucket, sorted by `recorded_at` (template.yaml, AuditTable).
BUCKET_INDEX = "bucket-time-index"


# Which records a decision needs: the others are not verified (each check may cost a KMS call).
Relevant = Callable[[dict[str, Any]], bool]


def decoded(item: integrity.Item) -> dict[str, Any]:
    """An item as plain values (text, flags), with `before` and `after` parsed from their JSON.
    The integrity tag is left out: it is checked on the item, never shown or compared."""
    plain: dict[str, Any] = {
        name: next(iter(value.values())) for name, value in item.items() if name != integrity.MAC
    }
    for side in ("before", "after"):
        if side in plain:
            plain[side] = json.loads(plain[side])
    plain["warnings"] = json.loads(plain["warnings"]) if "warnings" in plain else []
    return plain


class UntrustedRecord(Exception):
    """A record that may not drive a decision: the message says why."""


class AuditStore:
    """The audit table: the records the engine, the flap breaker and the exemption grants write
    and read, each read kept to the records whose integrity tag verifies."""

    def __init__(
        self,
        dynamodb: DynamoDBClient | None,
        table: str | None,
        settings: Settings,
        integrity: Integrity,
    ) -> None:
        self._dynamodb = dynamodb
        self.table = table
        self.settings = settings
        self.integrity = integrity

    @property
    def dynamodb(self) -> DynamoDBClient:
        if self._dynamodb is None:
            raise RuntimeError("no audit table: this store has no DynamoDB client")
        return self._dynamodb

    @property
    def table_name(self) -> str:
        """The table's name; only asked by callers that have one (AUDIT_TABLE is set)."""
        if not self.table:
            raise RuntimeError("no audit table: AUDIT_TABLE is not set")
        return self.table

    # -- writes -------------------------------------------------------------------------------

    def write_ahead(self, outcome: Outcome, planned: Any) -> None:
        """Record a fix before making it: `before` as read, `after` as planned, status `pending`.

        If the write lands but the invocation fails before the fix is verified and recorded (a
        lost answer, a timeout), the record still holds the exact prior state, and the next
        attempt at the event completes it (see `prior_record`). The outcome keeps the id for its
        final record.
        """
        outcome.audit_id = outcome.audit_id or audit_id_for(outcome)
        pending = replace(outcome, after=planned)
        try:
            # An earlier attempt's finished fix stays: a late second delivery of the event that
            # finds the bucket drifted again makes a fix (and a record) of its own.
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=self.integrity.sealed(to_item(pending, outcome.audit_id, PENDING)),
                ConditionExpression="attribute_not_exists(audit_id) OR #status <> :remediated",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":remediated": {"S": Status.REMEDIATED.value}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            outcome.audit_id = str(uuid.uuid4())
            item = self.integrity.sealed(to_item(pending, outcome.audit_id, PENDING))
            self.dynamodb.put_item(TableName=self.table_name, Item=item)

    def record(self, outcome: Outcome) -> bool:
        """Write the audit record (always True: every event's outcome has its own record).

        An event's record replaces what an earlier attempt at the same event wrote (its
        write-ahead record, or the same outcome: then the notification that may not have gone
        out is sent again, at least once, never lost).
        """
        audit_id = outcome.audit_id or audit_id_for(outcome)
        outcome.audit_id = audit_id
        item = self.integrity.sealed(to_item(outcome, audit_id))
        self.dynamodb.put_item(TableName=self.table_name, Item=item)
        return True

    # -- reads that drive decisions -----------------------------------------------------------

    def prior_record(self, outcome: Outcome) -> dict[str, Any] | None:
        """What an earlier attempt at the same event recorded for the outcome's control."""
        if not outcome.event_id or not outcome.control:
            return None
        return self.get_record(audit_id_for(outcome))

    def _control_records(
        self,
        bucket: str,
        control: str,
        fields: tuple[str, ...],
        *,
        since: datetime | None = None,
        relevant: Relevant | None = None,
    ) -> list[dict[str, Any]]:
        """One control's trusted records on one bucket (oldest first, since `since`), `fields`
        decoded. Records `relevant` says the decision does not need are left out unverified.
        Without a key nothing can be trusted, and the table is not asked."""
        if not self.settings.audit_mac_key:
            integrity.warn_no_key()
            return []
        key = "#bucket = :bucket" + (" AND recorded_at >= :since" if since else "")
        values = {":bucket": {"S": bucket}, ":control": {"S": control}}
        if since:
            values[":since"] = {"S": since.isoformat(timespec="milliseconds")}
        # Whole items: the integrity tag covers every attribute. (`bucket` is a reserved word.)
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=BUCKET_INDEX,
            KeyConditionExpression=key,
            FilterExpression="#control = :control",
            ExpressionAttributeNames={"#bucket": "bucket", "#control": "control"},
            ExpressionAttributeValues=values,
        )
        items = [item for page in pages for item in page["Items"]]
        if relevant is not None:
            items = [item for item in items if relevant(decoded(item))]
        found = [decoded(item) for item in self.integrity.trusted(items)]
        return [{name: record[name] for name in fields if name in record} for record in found]

    def history(
        self, bucket: str, control: str, *, relevant: Relevant | None = None
    ) -> list[dict[str, Any]]:
        """Every trusted audit record of one control on one bucket: its `before` and `after`."""
        return self._control_records(bucket, control, ("before", "after"), relevant=relevant)

    def recent(self, bucket: str, control: str, since: datetime) -> list[dict[str, Any]]:
        """The trusted records of one control on one bucket since `since`, oldest first:
        status, actor and the flap breaker's hold. A record dated in the future is never
        trusted (it would match every window)."""
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
            for record in self._control_records(bucket, control, fields, since=since)
        ]

    def recent_notices(self, bucket: str, control: str, since: datetime) -> list[dict[str, Any]]:
        """One control's trusted records on one bucket since `since`: id, status and whether
        notified (a forged `notified` record silences nothing)."""
        fields = ("audit_id", "status", "notified", "recorded_at")
        return self._control_records(bucket, control, fields, since=since)

    def grant_records(self, bucket: str, control: str) -> list[dict[str, Any]]:
        """The trusted exemption records of one bucket (`control` is their pseudo-control),
        oldest first: each `after` holds the grant in effect then (None once removed). A forged
        earlier grant cannot move an exemption's clock."""
        return self._control_records(bucket, control, ("audit_id", "after", "recorded_at"))

    # -- one record by id ---------------------------------------------------------------------

    def item(self, audit_id: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key={"audit_id": {"S": audit_id}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def trusted_item(self, audit_id: str) -> dict[str, Any] | None:
        """The item as stored; None if there is none; UntrustedRecord if it fails verification
        (reported once, as every untrusted record) or no key is configured to verify it."""
        item = self.item(audit_id)
        if item is None:
            return None
        why = self.integrity.why_untrusted(item)
        if why is not None:
            raise UntrustedRecord(f"audit record {audit_id} is not trusted: {why}")
        return item

    def checked_record(self, audit_id: str) -> dict[str, Any] | None:
        """The record, decoded, if it exists (None if not) and verifies (UntrustedRecord if
        not)."""
        item = self.trusted_item(audit_id)
        return None if item is None else decoded(item)

    def get_record(self, audit_id: str) -> dict[str, Any] | None:
        """The record if it exists and verifies; None otherwise (an untrusted one is reported)."""
        try:
            return self.checked_record(audit_id)
        except UntrustedRecord:
            return None
