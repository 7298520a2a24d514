"""The engine: one CloudTrail record in, one outcome per control of the family out.

parse → ignore failed calls and the service's own changes → fresh read → evaluate → exemption
tags (read only when something is wrong) → remediate or report per mode → verify by re-reading
→ audit record → SNS notification → metrics.

AccessDenied and a bucket deleted meanwhile become outcomes. Any other AWS error (throttling
that outlived the adaptive retries, 5xx) is raised, so that Lambda retries the event and, after
its retries, sends it to the dead-letter queue: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from bucketwarden import audit, exemptions, metrics, notify
from bucketwarden.aws import client, error_code, is_access_denied, is_bucket_gone
from bucketwarden.catalogue import controls_of
from bucketwarden.controls.base import Control, Evaluation, State
from bucketwarden.events import CloudTrailRecord, EventRejected, parse_record
from bucketwarden.outcome import REPORTED, Outcome, Status, utc_now
from bucketwarden.settings import Mode, Settings

logger = Logger(service="bucketwarden", child=True)

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
OWN_CHANGE = "change made by BucketWarden itself"


@dataclass
class EventContext:
    """What one event tells every control about who changed which bucket, when."""

    record: CloudTrailRecord
    bucket: str
    region: str | None
    tags: dict[str, str] | None = field(default=None)

    def base(self, control: Control, mode: Mode) -> Outcome:
        return Outcome(
            bucket=self.bucket,
            control=control.id,
            status=Status.COMPLIANT,
            reason="",
            event_id=self.record.eventID,
            event_name=self.record.eventName,
            event_time=self.record.eventTime,
            actor=self.record.actor,
            source_ip=self.record.sourceIPAddress,
            region=self.region,
            mode=mode.value,
        )


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
    )


class Engine:
    def __init__(self, family: str, settings: Settings) -> None:
        self.family = family
        self.controls = controls_of(family)
        self.settings = settings

    # -- entry points -------------------------------------------------------------------------

    def handle_event(self, event: Any) -> list[Outcome]:
        """Parse and handle one EventBridge event or bare CloudTrail record."""
        try:
            record = parse_record(event)
        except EventRejected as rejected:
            logger.warning(
                "event rejected", extra={"event_id": rejected.event_id, "reason": rejected.reason}
            )
            metrics.emit("InvalidEvents", "none")
            return [ignored(f"rejected: {rejected.reason}", event_id=rejected.event_id)]
        return self.handle_record(record)

    def handle_record(self, record: CloudTrailRecord) -> list[Outcome]:
        skip = self.reason_to_skip(record)
        if skip:
            if skip == OWN_CHANGE:
                for control in self._controls_for(record):
                    metrics.emit("LoopSuppressed", control.id)
            logger.info(skip, extra={"event_id": record.eventID, "event_name": record.eventName})
            return [ignored(skip, record)]
        region = record.awsRegion if _REGION.match(record.awsRegion or "") else None
        context = EventContext(record, str(record.bucket_name), region)
        return [self.run_control(control, context) for control in self._controls_for(record)]

    def reason_to_skip(self, record: CloudTrailRecord) -> str | None:
        """Why the event asks nothing of this family's controls, or None when it does."""
        if record.errorCode:
            return f"the call failed ({record.errorCode}), nothing changed"
        if not self._controls_for(record):
            return f"{record.eventName} is not handled by the {self.family} family"
        if not record.bucket_name:
            return f"{record.eventName} names no bucket"
        if self._is_own_change(record):
            return OWN_CHANGE
        return None

    def _controls_for(self, record: CloudTrailRecord) -> list[Control]:
        return [c for c in self.controls if record.eventName in c.trigger_events]

    def _is_own_change(self, record: CloudTrailRecord) -> bool:
        own = set(self.settings.service_role_arns)
        identity = record.userIdentity
        return bool(own) and (identity.issuer_arn in own or identity.arn in own)

    # -- one control --------------------------------------------------------------------------

    def run_control(self, control: Control, context: EventContext) -> Outcome:
        mode = self.settings.mode(control.id)
        outcome = context.base(control, mode)
        if mode is Mode.OFF:
            return replace(outcome, status=Status.IGNORED, reason=f"{control.id} is off")
        try:
            outcome = self._evaluate_and_fix(control, context, outcome, mode)
        except ClientError as error:
            outcome = self._classify(error, outcome)
        self.report(outcome)
        return outcome

    def _evaluate_and_fix(
        self, control: Control, context: EventContext, outcome: Outcome, mode: Mode
    ) -> Outcome:
        s3 = client("s3", context.region)
        before = control.read(s3, context.bucket)
        evaluation = control.evaluate(before, self.settings)
        # Set in place: if a later call fails, the caller's outcome still shows what was found.
        outcome.before = outcome.after = before
        outcome.reason = evaluation.reason
        if evaluation.compliant:
            return outcome
        exemption = self._exemption(control, context, s3)
        if exemption.exempt:
            reason = f"{evaluation.reason} ({exemption.note})"
            return replace(outcome, status=Status.EXEMPTED, reason=reason)
        if exemption.note:
            outcome.warnings.append(exemption.note)
        if self.settings.dry_run:
            return replace(outcome, status=Status.NONCOMPLIANT, after=evaluation.desired)
        if mode is Mode.NOTIFY or not evaluation.fixable:
            return replace(outcome, status=Status.NONCOMPLIANT)
        return self._remediate(control, context, s3, outcome, evaluation)

    def _remediate(
        self,
        control: Control,
        context: EventContext,
        s3: Any,
        outcome: Outcome,
        evaluation: Evaluation,
    ) -> Outcome:
        control.apply(s3, context.bucket, evaluation.desired)
        after: State = control.read(s3, context.bucket)
        fixed_at = utc_now()
        outcome = replace(outcome, after=after, fix_time=fixed_at.isoformat())
        verdict = control.evaluate(after, self.settings)
        if not verdict.compliant:
            reason = f"{evaluation.reason}; still wrong after the fix: {verdict.reason}"
            return replace(outcome, status=Status.FAILED, reason=reason)
        return replace(
            outcome,
            status=Status.REMEDIATED,
            time_to_remediate_ms=_elapsed_ms(context.record.event_time, fixed_at),
        )

    def _exemption(
        self, control: Control, context: EventContext, s3: Any
    ) -> exemptions.ExemptionCheck:
        if context.tags is None:
            context.tags = exemptions.read_tags(s3, context.bucket)
        return exemptions.check(context.tags, control.id, self.settings, utc_now().date())

    @staticmethod
    def _classify(error: ClientError, outcome: Outcome) -> Outcome:
        code = error_code(error)
        if is_bucket_gone(error):
            return replace(outcome, status=Status.SKIPPED, reason="bucket no longer exists")
        if is_access_denied(error):
            operation = getattr(error, "operation_name", "the call")
            reason = f"{code} on {operation}: BucketWarden's role may not do this"
            if outcome.reason:
                reason = f"{outcome.reason}; not fixed: {reason}"
            return replace(outcome, status=Status.FAILED, reason=reason)
        raise error

    # -- reporting ----------------------------------------------------------------------------

    def report(self, outcome: Outcome) -> None:
        """Audit, notify and count one outcome (never in a dry run)."""
        if self.settings.dry_run or outcome.status not in REPORTED:
            return
        first_time = True
        if self.settings.audit_table:
            first_time = audit.record(client("dynamodb"), self.settings.audit_table, outcome)
        # An exemption is reported once: its audit record already existing means it was.
        if self.settings.topic_arn and first_time:
            notify.publish(client("sns"), self.settings.topic_arn, outcome, self.settings)
            outcome.notified = True
        if first_time:
            metrics.record(outcome)
        log = logger.warning if outcome.status is Status.FAILED else logger.info
        log("outcome", extra={"outcome": outcome.to_dict()})


def _elapsed_ms(start: datetime | None, end: datetime) -> int | None:
    if start is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))
