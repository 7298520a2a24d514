"""What the engine and its gates share while judging: why controls run (an event or a sweep),
each control's step through a surface, and the outcomes of events that ask nothing or calls
that failed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ClientError

from bucketwarden import flap
from bucketwarden.accounts import AccountAccess
from bucketwarden.aws import (
    GONE_CODES,
    client,
    error_code,
    error_message,
    is_access_denied,
    is_gone,
    is_refused_document,
    is_setup_error,
)
from bucketwarden.controls.base import Control, Evaluation, Service
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Mode

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3control import S3ControlClient

    # The sweep parses no event and never loads the event models.
    from bucketwarden.events import CloudTrailRecord


@dataclass
class EventContext:
    """Why controls run: one event (who changed what, when), or a sweep (no event at all)."""

    record: CloudTrailRecord | None
    region: str | None
    found_by: str = "event"
    # The account the subject is in (the record's, else the hub's; None when unknown), and how
    # to reach it: None, the hub's own clients (a single-account stack, the sweep of the hub).
    account: str | None = None
    accounts: AccountAccess | None = None
    # An earlier attempt at this event ran (Lambda's retry, a second delivery after a failure):
    # what it recorded may need finishing.
    tried_before: bool = False
    # Bucket tags read for exemption checks, by bucket: read once per event, on drift only; a
    # sweep reads them for compliant subjects too (exemptions that would not be honoured).
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    # The sweep could not read them for a compliant check: its other compliant checks skip it.
    tags_unreadable: bool = False
    # Exemption records of a bucket (when each grant was first recorded): one Query per
    # bucket and event, asked only for a grant without an end date.
    grant_records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Website configurations read when public access is about to be closed (same rule).
    websites: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # What an earlier attempt at the event recorded, by control (read once: see _prior_fix).
    priors: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # Answers to the surfaces' reads, shared by the controls until one of them writes.
    reads: dict[tuple[str, str], Any] = field(default_factory=dict)

    def base(self, control: Control, mode: Mode, subject: str | None) -> Outcome:
        record = self.record
        return Outcome(
            bucket=subject,
            control=control.id,
            status=Status.COMPLIANT,
            reason="",
            event_id=record.eventID if record else None,
            event_name=record.eventName if record else None,
            event_time=record.eventTime if record else None,
            actor=record.actor if record else None,
            source_ip=record.sourceIPAddress if record else None,
            account=self.account,
            region=self.region,
            mode=mode.value,
            scope=control.scope,
            found_by=self.found_by,
        )

    @overload
    def client(self, service: Literal["s3"], region: str | None = None) -> S3Client: ...
    @overload
    def client(
        self, service: Literal["s3control"], region: str | None = None
    ) -> S3ControlClient: ...
    @overload
    def client(
        self, service: Literal["cloudtrail"], region: str | None = None
    ) -> CloudTrailClient: ...
    def client(self, service: Service, region: str | None = None) -> Any:
        """A client of `service` acting in the subject's account and region (or `region`, for a
        control whose API is served from one region only)."""
        where = region or self.region
        if self.accounts is None:
            return client(service, where)
        return self.accounts.client(service, self.account, where)

    @property
    def what(self) -> str:
        return self.record.eventName if self.record else "the sweep"

    @property
    def changed_at(self) -> datetime | None:
        return self.record.event_time if self.record else None


@dataclass
class Step:
    """One control's part in a pass over a surface: its outcome so far and its planned fix."""

    control: Control
    mode: Mode
    outcome: Outcome
    evaluation: Evaluation | None = None
    decided: bool = False
    # The flap breaker's verdict on a planned fix: a public-exposure control is fixed anyway,
    # and its fix may carry the escalation.
    flap_verdict: flap.FlapVerdict | None = None

    def decide(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.decided = True

    def reset(self, outcome: Outcome) -> None:
        """Start over from `outcome`: the surface is judged again."""
        self.outcome = outcome
        self.evaluation = None
        self.decided = False


def ignored(
    reason: str, record: CloudTrailRecord | None = None, event_id: str | None = None
) -> Outcome:
    """An outcome for an event that asks nothing of any control."""
    return Outcome(
        bucket=record.bucket_name if record else None,
        control=None,
        status=Status.IGNORED,
        reason=reason,
        event_id=record.eventID if record else event_id,
        event_name=record.eventName if record else None,
        event_time=record.eventTime if record else None,
        actor=record.actor if record else None,
        source_ip=record.sourceIPAddress if record else None,
        account=record.recipient_account if record else None,
    )


def classify(error: ClientError, outcome: Outcome) -> Outcome:
    """The outcome of a call that failed: gone, denied, misconfigured, refused; any other error
    is raised (Lambda retries the event)."""
    code = error_code(error)
    if is_gone(error):
        reason = f"{GONE_CODES[code]} no longer exists"
        return replace(outcome, status=Status.SKIPPED, reason=reason)
    operation = getattr(error, "operation_name", "the call")
    if is_access_denied(error):
        reason = f"{code} on {operation}: BucketWarden's role may not do this"
    elif is_setup_error(error):
        reason = f"{code} on {operation}: {error_message(error) or 'check the settings'}"
    elif is_refused_document(error):
        reason = f"S3 refused {operation} ({code}: {error_message(error) or 'no message'})"
    else:
        raise error
    if outcome.reason:
        reason = f"{outcome.reason}; not fixed: {reason}"
    return replace(outcome, status=Status.FAILED, reason=reason)
