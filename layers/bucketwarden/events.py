"""Parsing of CloudTrail S3 API calls, delivered bare or inside an EventBridge envelope.

Records in the wild are untidy: `requestParameters` may be null, `host` a list, values replaced by
"...", `account` a number. The models accept those shapes; anything we cannot act on becomes an
`EventRejected` with a reason a person can read, never an unhandled exception.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import BaseModel, ValidationError
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ConfigDict, Field, field_validator, with_config

# pydantic accepts typing.TypedDict only from Python 3.12; the package supports 3.11.
from typing_extensions import TypedDict

from bucketwarden.directory_buckets import is_directory_bucket

# S3's own, and S3 Express One Zone's for directory buckets (only the controls that declare
# `directory_buckets` act on those: see Control.applies_to).
S3_EVENT_SOURCES = frozenset({"s3.amazonaws.com", "s3express.amazonaws.com"})
API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
# The envelope's `source` for S3's CloudTrail events; anything else is not what the rules deliver.
ENVELOPE_SOURCE = "aws.s3"
# Each envelope `source` the rules match, and the record's eventSource it delivers.
ENVELOPE_SOURCES = {ENVELOPE_SOURCE: "s3.amazonaws.com", "aws.s3express": "s3express.amazonaws.com"}
DIRECTORY_EVENT_SOURCE = ENVELOPE_SOURCES["aws.s3express"]
# What exported records put in place of a value they leave out.
REDACTED = "..."
# What botocore accepts as a bucket name; anything else (a fixture's "{bucket}") would make every
# S3 call raise ParamValidationError, so Lambda would retry the event in vain.
_BUCKET_NAME = re.compile(r"^[a-zA-Z0-9.\-_]{1,255}$")

# CloudTrail writes ISO 8601; some exported fixtures use "2024-01-01 00:00:00.000".
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S.%f")

# Every model keeps the fields it does not name. Its validator is built on its first use, not at
# import: building them is most of what importing this module would cost a cold start (`make
# bench` shows what the functions' own code adds to it), and the first event needs them anyway.
_MODEL_CONFIG = ConfigDict(extra="allow", defer_build=True)


class EventRejected(ValueError):
    """The input is not a CloudTrail S3 API call this service can act on."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class SessionIssuer(BaseModel):
    model_config = _MODEL_CONFIG
    arn: str | None = None


class SessionContext(BaseModel):
    model_config = _MODEL_CONFIG
    sessionIssuer: SessionIssuer | None = None


class UserIdentity(BaseModel):
    model_config = _MODEL_CONFIG
    type: str | None = None
    arn: str | None = None
    accountId: str | None = None
    principalId: str | None = None
    invokedBy: str | None = None
    sessionContext: SessionContext | None = None

    def session_name(self, role_arn: str | None) -> str | None:
        """The session name of `role_arn`'s assumed-role session this identity is, else None.

        CloudTrail names an assumed-role session arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
        """
        if self.type != "AssumedRole" or not self.arn or not role_arn:
            return None
        role_name = role_arn.rsplit("/", 1)[-1]
        _, _, resource = self.arn.partition(":assumed-role/")
        role, _, session = resource.partition("/")
        return session if role == role_name and session else None

    @property
    def issuer_arn(self) -> str | None:
        """The IAM role behind an assumed-role session, or None for other identities."""
        if self.sessionContext and self.sessionContext.sessionIssuer:
            return self.sessionContext.sessionIssuer.arn
        return None


@with_config(ConfigDict(extra="allow"))
class RequestParameters(TypedDict, total=False):
    """The call's parameters: any keys, but a bucket name, when there is one, is text.

    A null bucketName names no bucket; a number, list or object there is a malformed record and is
    rejected naming the field, like any other field of the wrong type.
    """

    bucketName: str | None


class CloudTrailRecord(BaseModel):
    """One CloudTrail management event for an S3 (or S3 Control) API call."""

    model_config = _MODEL_CONFIG

    eventID: str
    eventName: str
    eventSource: str
    eventTime: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    recipientAccountId: str | None = None
    userIdentity: UserIdentity = Field(default_factory=UserIdentity)
    requestParameters: RequestParameters | None = None

    @field_validator("eventID", "eventName", "eventSource", mode="before")
    @classmethod
    def _required_text(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def bucket_name(self) -> str | None:
        params = self.requestParameters or {}
        name = params.get("bucketName")
        if not isinstance(name, str) or not name.strip() or name == REDACTED:
            return None
        return name

    @property
    def event_time(self) -> datetime | None:
        if not self.eventTime:
            return None
        for fmt in _TIME_FORMATS:
            try:
                return datetime.strptime(self.eventTime, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
        return None

    @property
    def actor(self) -> str | None:
        return self.userIdentity.arn or self.userIdentity.invokedBy

    @property
    def recipient_account(self) -> str | None:
        """The account the trail logged the call for; None when absent or redacted ("...")."""
        claimed = self.recipientAccountId
        return claimed if claimed and claimed != REDACTED else None

    def foreign_account(self, account_id: str | None) -> str | None:
        """The account the record says it belongs to, when that is not `account_id`.

        A record naming no account is judged like any other: its calls go to the stack's
        account anyway. None when the stack's account is unknown (the CLI outside a stack).
        """
        claimed = self.recipient_account
        return claimed if account_id and claimed and claimed != account_id else None

    def not_for(self, account_id: str | None) -> str | None:
        """Why the record is not acted on in `account_id`'s stack, or None when it may be."""
        foreign = self.foreign_account(account_id)
        if foreign is None:
            return None
        return f"the record is for account {foreign}, not this stack's account {account_id}"


class S3ApiCallEvent(EventBridgeModel):
    """EventBridge "AWS API Call via CloudTrail" envelope around a CloudTrail record.

    Only `source`, `detail-type` and `detail` are required: the other fields of Powertools'
    model are optional here, as deliveries without them exist (no `version` before 2015's
    format) and nothing is decided on them.
    """

    model_config = _MODEL_CONFIG
    version: Any = None
    id: Any = None
    region: Any = None
    resources: Any = None
    account: str = ""  # moto's EventBridge → SQS delivery drops it
    # Unused (the record's eventTime counts); exported fixtures blank it as "...".
    time: datetime | None = None  # type: ignore[assignment]  # pydantic: a field may widen
    detail: CloudTrailRecord

    @field_validator("account", mode="before")
    @classmethod
    def _account_as_text(cls, value: Any) -> str:
        return "" if value is None else str(value)

    @field_validator("time", mode="before")
    @classmethod
    def _time_or_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
        return value


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    return f"{where}: {first['msg']}"


def parse_record(event: Any) -> CloudTrailRecord:
    """Return the CloudTrail record in `event` (EventBridge envelope or bare record).

    Raises EventRejected with a readable reason for anything that is not an S3 API call record
    naming a bucket-level or account-level S3 configuration call.
    """
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        # ValueError covers bytes that are not UTF-8 and numbers over 4300 digits as well as
        # JSONDecodeError; RecursionError, nesting deeper than the parser goes.
        except (ValueError, RecursionError) as error:
            raise EventRejected(f"not JSON: {error}") from error
    if not isinstance(event, dict):
        raise EventRejected(f"expected a JSON object, got {type(event).__name__}")
    event_id = _guess_event_id(event)
    try:
        if "detail" in event and "detail-type" in event:
            record = _record_in(S3ApiCallEvent.model_validate(event), event_id)
        else:
            record = CloudTrailRecord.model_validate(event)
    except ValidationError as error:
        raise EventRejected(f"not a CloudTrail record ({_first_error(error)})", event_id) from error
    if record.eventSource not in S3_EVENT_SOURCES:
        raise EventRejected(f"event source {record.eventSource!r} is not S3", record.eventID)
    name = record.bucket_name
    if name and not _BUCKET_NAME.match(name):
        raise EventRejected(f"bucketName {name!r} is not a valid bucket name", record.eventID)
    if name and record.eventSource == DIRECTORY_EVENT_SOURCE and not is_directory_bucket(name):
        raise EventRejected(
            f"bucketName {name!r} is not a directory bucket, which is all that "
            f"{DIRECTORY_EVENT_SOURCE} logs",
            record.eventID,
        )
    return record


def _record_in(envelope: S3ApiCallEvent, event_id: str | None) -> CloudTrailRecord:
    """The envelope's record, once the envelope is what the rules deliver: S3's API calls."""
    if envelope.source not in ENVELOPE_SOURCES:
        expected = " or ".join(ENVELOPE_SOURCES)
        raise EventRejected(f"source {envelope.source!r} is not {expected}", event_id)
    if envelope.detail_type != API_CALL_DETAIL_TYPE:
        raise EventRejected(
            f"detail-type {envelope.detail_type!r} is not {API_CALL_DETAIL_TYPE!r}", event_id
        )
    record = envelope.detail
    delivered = ENVELOPE_SOURCES[envelope.source]
    if record.eventSource in S3_EVENT_SOURCES and record.eventSource != delivered:
        raise EventRejected(
            f"source {envelope.source!r} does not deliver eventSource {record.eventSource!r}",
            record.eventID,
        )
    # The envelope's account is the record's, so one check covers both; moto's EventBridge →
    # SQS delivery leaves it out, which claims nothing.
    envelope_account = envelope.account if envelope.account != REDACTED else ""
    if not envelope_account:
        return record
    if record.recipient_account is None:
        record.recipientAccountId = envelope_account
    elif record.recipient_account != envelope_account:
        raise EventRejected(
            f"the envelope's account {envelope_account} is not the record's recipientAccountId "
            f"{record.recipient_account}",
            record.eventID,
        )
    return record


def _guess_event_id(event: dict[str, Any]) -> str | None:
    detail = event.get("detail")
    if isinstance(detail, dict) and isinstance(event_id := detail.get("eventID"), str):
        return event_id
    for key in ("eventID", "id"):
        if isinstance(event_id := event.get(key), str):
            return event_id
    return None


def envelope_source(event_source: Any) -> str:
    """The envelope `source` EventBridge gives a record of `event_source` (aws.s3 by default)."""
    by_event_source = {delivered: source for source, delivered in ENVELOPE_SOURCES.items()}
    return by_event_source.get(str(event_source), ENVELOPE_SOURCE)


def as_eventbridge_event(event: dict[str, Any]) -> dict[str, Any]:
    """Wrap a bare CloudTrail record in the envelope EventBridge delivers it in."""
    if "detail" in event and "detail-type" in event:
        return event
    return {
        "version": "0",
        "id": str(event.get("eventID", "")),
        "detail-type": API_CALL_DETAIL_TYPE,
        "source": envelope_source(event.get("eventSource")),
        "account": str(event.get("recipientAccountId") or ""),
        "time": str(event.get("eventTime") or ""),
        "region": str(event.get("awsRegion") or ""),
        "resources": [],
        "detail": event,
    }
