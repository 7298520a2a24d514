"""Integrity tags of audit records: decisions rest only on records BucketWarden wrote.

Anyone allowed dynamodb:PutItem on the audit table could otherwise make the service act on a
record of their own: a 100-year COMPLIANCE retention as a bucket's recorded baseline, a
`flapping` record that holds a control, a `before` that a rollback writes back. So every record
BucketWarden writes carries `mac`, an HMAC-SHA-256 made by KMS (GenerateMac) with a key that only
the stack's roles may use (AUDIT_MAC_KEY), and every record read for a decision is verified
(VerifyMac) before it counts.

What the tag covers: every attribute of the item but `mac` itself (audit_id, bucket, control,
status, recorded_at, before, after, flapping, actor, event and fix times, ids, reason, ...), in
DynamoDB's typed JSON ({"S": ...}, {"BOOL": ...}), keys sorted, compact, UTF-8. Its SHA-256 after
a version label is the MAC's message: KMS takes at most 4096 bytes and a record can hold two
policies of 20 KB. An attribute added, removed or changed after the tag was made fails it, so
whatever changes a record re-tags it (see the tooling's `audit_history.record_rollback`).

A record is untrusted when it has no tag, its tag does not verify, or its `recorded_at` is not a
time or lies more than CLOCK_SKEW ahead (a future record would match every "since" query). An
untrusted record is ignored for the decision, counted (metric ForgedRecords) and notified once:
a marker record `forged-<hash of its id>`, written only if absent, makes the first function that
finds it the one that notifies; a process cache spares the marker's write on later reads.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeAlias

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from bucketwarden import notify
from bucketwarden.aws import error_code
from bucketwarden.metrics import Metrics
from bucketwarden.notify import Notifier
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
    from mypy_boto3_kms import KMSClient

logger = Logger(service="bucketwarden", child=True)

MAC = "mac"
MAC_ALGORITHM: Final = "HMAC_SHA_256"
# Bumped if the canonical form ever changes: a tag of one form never verifies another.
LABEL = b"bucketwarden audit record v1\n"
CLOCK_SKEW = timedelta(minutes=5)
# What VerifyMac answers for a tag that does not match (not an error of the call).
INVALID_MAC = "KMSInvalidMacException"
# The status of the marker record written for an untrusted record.
FORGED = "forged-record"
FORGED_PREFIX = "forged-"
# Verdicts kept per process: a warm function verifies a record once, not on every event.
CACHE_LIMIT = 10_000

Item: TypeAlias = "dict[str, AttributeValueTypeDef]"

# (key, digest of the item's content, its tag) → verified. Keyed on the content, not the id:
# the same id and tag with other content must be verified again (and fail).
_verdicts: dict[tuple[str, bytes, bytes], bool] = {}
# Untrusted records already reported by this process (their marker exists).
_reported: set[str] = set()
_warned_no_key: list[bool] = []


def forget() -> None:
    """Forget this process's verdicts and reports (a new endpoint, or a test)."""
    _verdicts.clear()
    _reported.clear()
    _warned_no_key.clear()


def digest(item: Item) -> bytes:
    """The MAC's message: SHA-256 of the label and the item's canonical form without `mac`."""
    body = {name: value for name, value in item.items() if name != MAC}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(LABEL + text.encode()).digest()


def warn_no_key() -> None:
    """Say once per process that records are neither tagged nor trusted without a key."""
    if not _warned_no_key:
        _warned_no_key.append(True)
        logger.warning(
            "AUDIT_MAC_KEY is not set: audit records are written without an integrity tag, and "
            "no recorded data drives a decision (no flap hold, recorded baseline or rollback)"
        )


def sealed(kms: KMSClient | None, item: Item, key_id: str | None) -> Item:
    """`item` with its tag (one GenerateMac); as it is without a key (it then drives nothing)."""
    if not key_id:
        warn_no_key()
        return item
    if kms is None:
        raise RuntimeError("AUDIT_MAC_KEY is set but no KMS client was given to tag records")
    response = kms.generate_mac(KeyId=key_id, MacAlgorithm=MAC_ALGORITHM, Message=digest(item))
    return {**item, MAC: {"B": bytes(response["Mac"])}}


def distrust(kms: KMSClient, item: Item, key_id: str, now: datetime) -> str | None:
    """Why `item` may not drive a decision, or None when BucketWarden wrote it as it is."""
    late = _future(str((item.get("recorded_at") or {}).get("S", "")), now)
    if late:
        return late
    tag = (item.get(MAC) or {}).get("B")
    if not tag:
        return "it carries no integrity tag"
    if not _verifies(kms, digest(item), bytes(tag), key_id):
        return "its integrity tag does not verify: it was written or changed by someone else"
    return None


def _future(recorded_at: str, now: datetime) -> str | None:
    try:
        when = datetime.fromisoformat(recorded_at)
    except ValueError:
        return f"its recorded_at {recorded_at[:40]!r} is not a time"
    if when.tzinfo is None:
        return f"its recorded_at {recorded_at[:40]!r} has no time zone"
    if when > now + CLOCK_SKEW:
        return f"its recorded_at {recorded_at[:40]} is in the future"
    return None


def _verifies(kms: KMSClient, message: bytes, tag: bytes, key_id: str) -> bool:
    known = _verdicts.get((key_id, message, tag))
    if known is not None:
        return known
    try:
        kms.verify_mac(KeyId=key_id, MacAlgorithm=MAC_ALGORITHM, Message=message, Mac=tag)
        verdict = True
    except ClientError as error:
        # Any other error (access denied, throttling) is raised: not knowing is not "forged".
        if error_code(error) != INVALID_MAC:
            raise
        verdict = False
    if len(_verdicts) >= CACHE_LIMIT:
        _verdicts.clear()
    _verdicts[(key_id, message, tag)] = verdict
    return verdict


NO_KEY = "no AUDIT_MAC_KEY is configured to verify audit records"


class ForgeryAlarm:
    """What the first sighting of an untrusted record sets off: the ForgedRecords metric, and a
    notification when there is a topic."""

    def __init__(self, metrics: Metrics, notifier: Notifier | None) -> None:
        self.metrics = metrics
        self.notifier = notifier

    def __call__(self, outcome: Outcome) -> None:
        self.metrics.emit("ForgedRecords", _known_control(outcome.control))
        if self.notifier is not None:
            self.notifier.publish(outcome)


class Integrity:
    """Tags the records of one audit table and verifies them, with the KMS client it is given;
    an untrusted record is reported once (a marker record in the table, then `alarm`)."""

    def __init__(
        self,
        kms: KMSClient | None,
        dynamodb: DynamoDBClient | None,
        table: str | None,
        settings: Settings,
        alarm: ForgeryAlarm,
    ) -> None:
        self.kms = kms
        self.dynamodb = dynamodb
        self.table = table
        self.settings = settings
        self.alarm = alarm

    def sealed(self, item: Item) -> Item:
        return sealed(self.kms, item, self.settings.audit_mac_key)

    def _table(self) -> tuple[KMSClient, DynamoDBClient, str]:
        """The clients and table name that verifying a record needs (it is read from a table)."""
        if self.kms is None or self.dynamodb is None or not self.table:
            raise RuntimeError("verifying audit records needs the table, and DynamoDB and KMS")
        return self.kms, self.dynamodb, self.table

    def why_untrusted(self, item: Item) -> str | None:
        """Why `item` may not drive a decision (an untrusted record is reported), or None."""
        key = self.settings.audit_mac_key
        if not key:
            warn_no_key()
            return NO_KEY
        kms, _, _ = self._table()
        why = distrust(kms, item, key, utc_now())
        if why is not None:
            self.report_untrusted(item, why)
        return why

    def trusted(self, items: list[Item]) -> list[Item]:
        """The items that may drive a decision; each other one is reported (once), left out."""
        return [item for item in items if self.why_untrusted(item) is None]

    def report_untrusted(self, item: Item, why: str) -> None:
        """Log every sighting; count and notify the first (the marker record decides which)."""
        audit_id = str((item.get("audit_id") or {}).get("S", ""))
        logger.warning("untrusted audit record ignored", extra={"audit_id": audit_id, "why": why})
        if audit_id in _reported:
            return
        outcome = _forged_outcome(item, audit_id, why)
        first = self._write_marker(outcome, audit_id)
        _reported.add(audit_id)
        if first:
            self.alarm(outcome)

    def _write_marker(self, outcome: Outcome, audit_id: str) -> bool:
        """Write the marker of an untrusted record unless it exists: True when this call did."""
        now = utc_now().isoformat(timespec="milliseconds")
        item: Item = {
            "audit_id": {"S": marker_id(audit_id)},
            "status": {"S": FORGED},
            "recorded_at": {"S": now},
            "found_by": {"S": "integrity-check"},
            "reason": {"S": outcome.reason},
            "forged_audit_id": {"S": audit_id[:1024]},
        }
        # Not `bucket`: the marker stays out of the bucket index, so no decision ever reads it.
        for name, value in (("forged_bucket", outcome.bucket), ("forged_control", outcome.control)):
            if value:
                item[name] = {"S": value}
        _, dynamodb, table = self._table()
        try:
            dynamodb.put_item(
                TableName=table,
                Item=self.sealed(item),
                ConditionExpression="attribute_not_exists(audit_id)",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True


def marker_id(audit_id: str) -> str:
    return FORGED_PREFIX + hashlib.sha256(audit_id.encode()).hexdigest()[:32]


def _text(item: Item, name: str) -> str | None:
    value = (item.get(name) or {}).get("S")
    return None if value is None else str(value)[:256]


def _known_control(control: str | None) -> str:
    """A metric dimension from a record someone else wrote: only a real control id."""
    from bucketwarden.catalogue import CONTROL_IDS  # the catalogue imports the controls

    return control if control in CONTROL_IDS else "none"


def _forged_outcome(item: Item, audit_id: str, why: str) -> Outcome:
    control = _text(item, "control")
    bucket = _text(item, "bucket")
    shown = audit_id[:128]
    outcome = Outcome(
        bucket=bucket,
        control=control,
        status=Status.FAILED,
        reason=(
            f"audit record {shown} ignored: {why}. BucketWarden did not write it as it is, so "
            "no flap hold, recorded baseline or rollback rests on it"
        ),
        scope=_text(item, "scope") or "bucket",
        found_by="integrity-check",
    )
    where = notify.subject_name(outcome) if bucket else "no subject"
    outcome.escalation = (
        f"BucketWarden ignored a forged audit record of {control or 'no control'} on {where}"
    )
    return outcome
