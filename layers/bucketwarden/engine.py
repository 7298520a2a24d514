"""The engine: one CloudTrail record in, one outcome per control of the family out.

parse → ignore failed calls and the service's own changes → fresh read → evaluate → exemption
tags (read only when something is wrong; a sweep reads them always) → remediate or report per
mode → verify by re-reading → audit record → SNS notification → metrics.

AccessDenied and a bucket deleted meanwhile become outcomes. Any other AWS error (throttling
that outlived the adaptive retries, 5xx) is raised, so that Lambda retries the event and, after
its retries, sends it to the dead-letter queue: nothing is dropped silently.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from bucketwarden import audit, exemptions, flap, grants, metrics, notify, website
from bucketwarden.aws import (
    GONE_CODES,
    PlannedWrites,
    ReadOnce,
    client,
    error_code,
    error_message,
    is_access_denied,
    is_gone,
    is_refused_document,
    is_setup_error,
)
from bucketwarden.catalogue import controls_of
from bucketwarden.controls.base import CannotFix, Control, Evaluation, State
from bucketwarden.events import CloudTrailRecord, EventRejected, parse_record
from bucketwarden.outcome import REPORTED, Outcome, Status, utc_now
from bucketwarden.settings import ExemptionSource, Mode, Settings

logger = Logger(service="bucketwarden", child=True)

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# Exempted drift of one bucket and control is notified at most once in this period.
DIGEST_PERIOD = timedelta(hours=24)
# Exemption changes (granted, honoured or not, removed): counted as ExemptionChanges.
CHANGE_STATUSES = frozenset({Status.EXEMPTED, Status.NONCOMPLIANT, Status.COMPLIANT})
OWN_CHANGE = "change made by BucketWarden itself"
# How many times a surface is judged when it keeps changing between the read and the write.
MAX_JUDGEMENTS = 3
EARLIER_ATTEMPT = "(fixed by an earlier attempt at this event)"


@dataclass
class EventContext:
    """Why controls run: one event (who changed what, when), or a sweep (no event at all)."""

    record: CloudTrailRecord | None
    region: str | None
    found_by: str = "event"
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
            region=self.region,
            mode=mode.value,
            scope=control.scope,
            found_by=self.found_by,
        )

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
    )


class Engine:
    def __init__(
        self, family: str, settings: Settings, controls: tuple[Control, ...] | None = None
    ) -> None:
        self.family = family
        self.controls = controls_of(family) if controls is None else controls
        self.settings = settings
        # The sweep sends one summary instead of a notification per outcome.
        self.notify_each = True

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

    def handle_record(self, record: CloudTrailRecord, tried_before: bool = False) -> list[Outcome]:
        """Handle one record; `tried_before` when an earlier attempt at it may have written."""
        skip = self.reason_to_skip(record)
        if skip:
            if skip == OWN_CHANGE:
                for control in self._controls_for(record):
                    metrics.emit("LoopSuppressed", control.id)
            logger.info(skip, extra={"event_id": record.eventID, "event_name": record.eventName})
            return [ignored(skip, record)]
        region = record.awsRegion if _REGION.match(record.awsRegion or "") else None
        context = EventContext(record, region, tried_before=tried_before)
        if self._handles_exemption_change(record):
            return [self._exemption_change(record, context)]
        self._wait_for_baseline(record)
        outcomes: list[Outcome] = []
        for group in surface_groups(self._controls_for(record)):
            outcomes.extend(self.run_surface(group, context, group[0].subject(record)))
        return outcomes

    def check(
        self, controls: list[Control], subject: str, region: str | None, found_by: str
    ) -> list[Outcome]:
        """Run `controls` on `subject` without an event (the sweep): same reads, fixes, reports."""
        context = EventContext(None, region, found_by=found_by)
        outcomes: list[Outcome] = []
        for group in surface_groups(controls):
            outcomes.extend(self.run_surface(group, context, subject))
        return outcomes

    def reason_to_skip(self, record: CloudTrailRecord) -> str | None:
        """Why the event asks nothing of this family's controls, or None when it does."""
        # Another account's record, or a call that failed: nothing to look at.
        unusable = record.not_for(self.settings.account_id) or _failed_call(record)
        if unusable:
            return unusable
        if self._handles_exemption_change(record):
            # No loop guard: BucketWarden never tags a bucket, so a tagging call made with one
            # of its roles is audited like anyone's.
            return None if record.bucket_name else f"{record.eventName} names no bucket"
        controls = self._controls_for(record)
        if not controls:
            return f"{record.eventName} is not handled by the {self.family} family"
        if not any(control.subject(record) for control in controls):
            return f"{record.eventName} names no {controls[0].scope}"
        if self._is_own_change(record):
            return OWN_CHANGE
        return None

    def _handles_exemption_change(self, record: CloudTrailRecord) -> bool:
        return (
            record.eventName in exemptions.CHANGE_EVENTS and self.family == exemptions.CHANGE_FAMILY
        )

    def _controls_for(self, record: CloudTrailRecord) -> list[Control]:
        return [c for c in self.controls if record.eventName in c.trigger_events]

    def _is_own_change(self, record: CloudTrailRecord) -> bool:
        """The call came from one of BucketWarden's functions: its role, and its session.

        The role alone is not enough: anyone allowed iam:PassRole could give it to a function
        of their own. Lambda names a function's role session after the function, so the session
        must be one of the service's function names too (and the S3 writes of each role are
        allowed only from its own function: see template.yaml).
        """
        identity = record.userIdentity
        if identity.issuer_arn not in self.settings.service_role_arns:
            return False
        return identity.session_name(identity.issuer_arn) in self.settings.service_function_names

    def _wait_for_baseline(self, record: CloudTrailRecord) -> None:
        # Infrastructure-as-code configures a bucket in the calls after CreateBucket; judging it
        # before they land would fix what was about to be set anyway.
        if record.eventName == "CreateBucket" and self.settings.baseline_delay_seconds:
            time.sleep(self.settings.baseline_delay_seconds)

    # -- one surface --------------------------------------------------------------------------

    def run_surface(
        self, controls: list[Control], context: EventContext, subject: str | None
    ) -> list[Outcome]:
        """Run controls that share one surface in one read-modify-write.

        Each control judges the state the previous ones left, so their fixes combine into one
        desired state, written once and verified by one re-read.
        """
        steps: list[Step] = []
        for control in controls:
            mode = self.settings.mode(control.id)
            step = Step(control, mode, context.base(control, mode, subject))
            if mode is Mode.OFF:
                step.decide(
                    replace(step.outcome, status=Status.IGNORED, reason=f"{control.id} is off")
                )
            elif subject is None:
                reason = f"{context.what} names no {control.scope}"
                step.decide(replace(step.outcome, status=Status.IGNORED, reason=reason))
            steps.append(step)
        active = [step for step in steps if not step.decided]
        if active and subject is not None:
            try:
                self._evaluate_and_fix(active, context, subject)
            except ClientError as error:
                for step in active:
                    if not step.decided:
                        step.decide(self._classify(error, step.outcome))
            except CannotFix as refusal:
                for step in active:
                    if not step.decided:
                        reason = f"{step.outcome.reason}; not fixed: {refusal}"
                        step.decide(replace(step.outcome, status=Status.FAILED, reason=reason))
        # Controls of the surface that joined when it changed under the fix (see _join_surface).
        steps.extend(step for step in active if all(step is not other for other in steps))
        for step in steps:
            self.report(step.outcome)
        return [step.outcome for step in steps]

    def _evaluate_and_fix(self, steps: list[Step], context: EventContext, subject: str) -> None:
        first = steps[0].control
        # A dry run plans its writes: later reads answer what they would have set.
        reads = PlannedWrites if self.settings.dry_run else ReadOnce
        api = reads(client(first.service, context.region), context.reads)
        before = first.observe(api, subject, self.settings)
        # Edits others made to the surface between the read and the write, as "was → is".
        changes: list[str] = []
        for judgement in range(1, MAX_JUDGEMENTS + 1):
            planned, desired = self._judge(steps, context, subject, before)
            _note_changes(steps, first, changes)
            if not planned:
                return
            # Recorded first, so that the read right before the write is the last call before it.
            self._write_ahead(planned, desired)
            if judgement == MAX_JUDGEMENTS and _closes_exposure(planned):
                # Edits that keep coming must not keep a bucket open: the last judgement is
                # written, and its outcomes say that an edit made meanwhile may be replaced.
                _note_overridden(planned, first, len(changes))
                self._remediate(planned, context, api, subject, desired)
                return
            current = self._changed_meanwhile(first, api, subject, before)
            if current is None:
                self._remediate(planned, context, api, subject, desired)
                return
            # Judged again from the fresh read: the fix keeps the edit (each control computes
            # the whole desired state from what it reads), and the outcome records it. The
            # outcome keeps its audit id: the next write-ahead (or the final record) replaces
            # this one, so no pending record is left of a fix that was never made.
            changes.append(f"{first.describe(before)} → {first.describe(current)}")
            before = current
            self._join_surface(steps, context, subject)
            for step in steps:
                base = context.base(step.control, step.mode, subject)
                step.reset(replace(base, audit_id=step.outcome.audit_id))
        self._give_up(steps, first, changes, before)

    def _join_surface(self, steps: list[Step], context: EventContext, subject: str) -> None:
        """Every control of the surface judges a state that changed under the fix.

        The change is someone's edit, judged so far only by the controls the event triggered (a
        CreateBucket's fix of the bucket policy is secure-transport's alone). The write keeps the
        edit, so every control of the surface that is not off must judge it too: otherwise the
        write could carry back a public statement another fix has just removed."""
        surface = steps[0].control.surface
        present = {step.control.id: step for step in steps}
        joined: list[Step] = []
        for control in self.controls:
            mode = self.settings.mode(control.id)
            if control.id in present:
                joined.append(present[control.id])
            elif control.surface == surface and mode is not Mode.OFF:
                joined.append(Step(control, mode, context.base(control, mode, subject)))
        steps[:] = joined

    def _judge(
        self, steps: list[Step], context: EventContext, subject: str, before: State
    ) -> tuple[list[Step], State]:
        """Each control judges the state the previous ones' fixes leave: the steps to fix, and
        the desired state their fixes combine into."""
        state = before
        planned: list[Step] = []
        for step in steps:
            evaluation = step.control.evaluate(state, self.settings)
            # Set in place: if a later call fails, the outcome still shows what was found.
            step.outcome.before = before
            step.outcome.after = before
            step.outcome.reason = evaluation.reason
            prior = self._prior_fix(context, step.outcome)
            if prior and evaluation.compliant:
                step.decide(self._confirmed(step.outcome, prior, context))
                continue
            if prior and prior["status"] == audit.PENDING:
                # The earlier attempt read the state before anything was changed.
                step.outcome.before = prior["before"]
            if evaluation.compliant:
                step.outcome.warnings.extend(
                    self._unusable_exemption(step, context, subject, state)
                )
                step.decided = True
                continue
            exemption = self._exemption(step.control, context, subject, state)
            if exemption.exempt:
                reason = f"{evaluation.reason} ({exemption.note})"
                step.decide(replace(step.outcome, status=Status.EXEMPTED, reason=reason))
                continue
            if exemption.note:
                step.outcome.warnings.append(exemption.note)
            if evaluation.public_read and step.control.checks_website:
                step.outcome.warnings.extend(self._website_warning(step.control, context, subject))
            if step.mode is Mode.NOTIFY or not evaluation.fixable:
                step.decide(replace(step.outcome, status=Status.NONCOMPLIANT))
                continue
            # A dry run asks too (one read): it shows the hold a real run would keep.
            verdict = self._flap_verdict(step.control, subject)
            if verdict.hold:
                step.decide(self._held(step.outcome, verdict))
                continue
            step.evaluation = evaluation
            step.flap_verdict = verdict
            state = evaluation.desired
            planned.append(step)
        return planned, state

    def _changed_meanwhile(
        self, control: Control, api: Any, subject: str, judged: State
    ) -> State | None:
        """The surface read again right before the write, when it is no longer what was judged.

        Only for surfaces people edit (policies, ACLs); a dry run writes nothing it could lose.
        """
        if not control.recheck_before_write or self.settings.dry_run:
            return None
        api.forget()
        current = control.reread(api, subject, self.settings, judged)
        return None if control.same(current, judged) else current

    @staticmethod
    def _give_up(steps: list[Step], control: Control, changes: list[str], latest: State) -> None:
        """The surface kept changing under the fix: left as it is rather than overwrite an edit."""
        why = (
            f"not fixed: the {control.surface} changed {len(changes)} times while the fix was "
            "prepared, so it is left as it is rather than overwrite someone's edit; the next "
            "change or sweep judges it again"
        )
        for step in steps:
            if not step.decided:
                reason = f"{step.outcome.reason}; {why}"
                step.decide(replace(step.outcome, status=Status.FAILED, reason=reason))
                step.outcome.after = latest

    def _write_ahead(self, planned: list[Step], desired: State) -> None:
        """Record each planned fix as `pending` before it is made (see audit.write_ahead)."""
        if self.settings.audit_table and not self.settings.dry_run:
            for step in planned:
                audit.write_ahead(
                    client("dynamodb"),
                    self.settings.audit_table,
                    step.outcome,
                    desired,
                    settings=self.settings,
                )

    def _remediate(
        self, planned: list[Step], context: EventContext, api: Any, subject: str, desired: State
    ) -> None:
        last = planned[-1].control
        last.apply(api, subject, desired)
        after: State = last.verify(api, subject, self.settings, planned[0].outcome.before)
        fixed_at = utc_now()
        moved = self._changed_after_write(last, after, desired)
        for step in planned:
            outcome = replace(step.outcome, after=after, fix_time=fixed_at.isoformat())
            if moved:
                outcome.warnings = [*outcome.warnings, moved]
            verdict = step.control.evaluate(after, self.settings)
            if not verdict.compliant:
                found = step.evaluation.reason if step.evaluation else outcome.reason
                reason = f"{found}; still wrong after the fix: {verdict.reason}"
                step.decide(replace(outcome, status=Status.FAILED, reason=reason))
                continue
            if self.settings.dry_run:  # the fix as planned: found, not made
                step.decide(replace(outcome, status=Status.NONCOMPLIANT, fix_time=None))
                continue
            elapsed = _elapsed_ms(context.changed_at, fixed_at)
            fixed = replace(outcome, status=Status.REMEDIATED, time_to_remediate_ms=elapsed)
            step.decide(self._escalated(fixed, step.flap_verdict))

    def _changed_after_write(self, control: Control, after: State, desired: State) -> str | None:
        """Why the surface read after the fix is not what was written (an edit made right after
        it, kept and recorded as `after`), or None when it is."""
        if not control.recheck_before_write or self.settings.dry_run:
            return None
        if control.same(after, desired):
            return None
        return (
            f"the {control.surface} read after the fix is not the one written: changed meanwhile "
            f"to {control.describe(after)} (kept; recorded as after)"
        )

    def _prior_fix(self, context: EventContext, outcome: Outcome) -> dict[str, Any] | None:
        """The fix an earlier attempt at this event recorded (pending or done), if any.

        Read once per control: when the surface is judged again, this attempt's own write-ahead
        record is not an earlier attempt's."""
        table = self.settings.audit_table
        if not (context.tried_before and table):
            return None
        if outcome.control not in context.priors:
            context.priors[str(outcome.control)] = self._read_prior_fix(outcome, table)
        return context.priors[str(outcome.control)]

    def _read_prior_fix(self, outcome: Outcome, table: str) -> dict[str, Any] | None:
        prior = audit.prior_record(client("dynamodb"), table, outcome, settings=self.settings)
        if prior and prior["status"] in {audit.PENDING, Status.REMEDIATED.value}:
            return prior
        return None

    @staticmethod
    def _confirmed(outcome: Outcome, prior: dict[str, Any], context: EventContext) -> Outcome:
        """An earlier attempt's fix, found in place: recorded and notified as this event's fix.

        Its write landed but the attempt failed before it recorded the fix, or before it sent
        the notification; its write-ahead record holds the state it found.
        """
        fixed_at = utc_now()
        reason = prior.get("reason") or outcome.reason
        if EARLIER_ATTEMPT not in reason:  # a third attempt finds the second one's record
            reason = f"{reason} {EARLIER_ATTEMPT}"
        return replace(
            outcome,
            status=Status.REMEDIATED,
            reason=reason,
            before=prior["before"],
            fix_time=prior.get("fix_time") or fixed_at.isoformat(),
            time_to_remediate_ms=_elapsed_ms(context.changed_at, fixed_at),
        )

    def _flap_verdict(self, control: Control, subject: str) -> flap.FlapVerdict:
        never_hold = control.closes_public_exposure
        return flap.check(subject, control.id, utc_now(), self.settings, never_hold=never_hold)

    def _held(self, outcome: Outcome, verdict: flap.FlapVerdict) -> Outcome:
        reason = f"{outcome.reason}; {flap.held_reason(verdict, self.settings)}"
        held = replace(
            outcome,
            status=Status.NONCOMPLIANT,
            reason=reason,
            flapping=True,
            held_since=verdict.held_since,
            held_told_at=verdict.told_at,
            held_drifts=verdict.drifts,
        )
        where = notify.subject_name(outcome)
        if verdict.escalate:
            held.escalation = flap.escalation(verdict, str(outcome.control), where, self.settings)
        elif verdict.digest:
            held.escalation = flap.digest(verdict, str(outcome.control), where)
        if held.escalation:
            held.warnings = [*outcome.warnings, flap.ADVICE]
        return held

    def _escalated(self, fixed: Outcome, verdict: flap.FlapVerdict | None) -> Outcome:
        """A fix of a public-exposure control that keeps being re-opened: escalated once per
        window (`flapping` in its record says it was), fixed all the same."""
        if verdict is None or not verdict.escalate:
            return fixed
        where = notify.subject_name(fixed)
        message = flap.public_escalation(verdict, str(fixed.control), where, self.settings)
        warnings = [*fixed.warnings, flap.PUBLIC_ADVICE]
        return replace(fixed, flapping=True, escalation=message, warnings=warnings)

    def _exemption(
        self, control: Control, context: EventContext, subject: str, state: State
    ) -> exemptions.ExemptionCheck:
        bucket = control.exemption_bucket(subject, state)
        if bucket is None:
            return exemptions.ExemptionCheck(exempt=False)
        if bucket not in context.tags:
            context.tags[bucket] = exemptions.read_tags(client("s3", context.region), bucket)
        today = utc_now().date()

        def first_recorded(grant: exemptions.Grant) -> date:
            return self._first_recorded(context, bucket, grant)

        tags = context.tags[bucket]
        by_tag = exemptions.check(tags, control.id, self.settings, today, first_recorded)
        tags_only = self.settings.exemption_source is ExemptionSource.TAGS
        if by_tag.exempt or tags_only or not self.settings.exemptions_parameter:
            return by_tag
        allowlist = exemptions.load_allowlist(self.settings.exemptions_parameter)
        listed = exemptions.check_allowlist(
            allowlist, bucket, control.id, self.settings, today, first_recorded=first_recorded
        )
        # The allowlist's verdict when it has one; else what the tags said (an invalid tag, say).
        return listed if listed.exempt or listed.note else by_tag

    def _grant_records(self, context: EventContext, bucket: str) -> list[dict[str, Any]]:
        """The bucket's exemption records, oldest first (none without an audit table)."""
        table = self.settings.audit_table
        if bucket not in context.grant_records:
            context.grant_records[bucket] = (
                audit.grant_records(
                    client("dynamodb"),
                    table,
                    bucket,
                    exemptions.CHANGE_CONTROL,
                    settings=self.settings,
                )
                if table
                else []
            )
        return context.grant_records[bucket]

    def _first_recorded(self, context: EventContext, bucket: str, grant: exemptions.Grant) -> date:
        """When the audit table first recorded the grant; a grant never recorded (tagged before
        BucketWarden watched, a tagging event lost, an allowlist entry) is recorded now, and
        its days count from today."""
        records = self._grant_records(context, bucket)
        found = grants.first_recorded(records, grant)
        if found:
            return found
        now = utc_now()
        if self.settings.audit_table and not self.settings.dry_run:
            self.report(self._grant_found(context, bucket, grant))
        records.append({"after": grant.to_record(), "recorded_at": now.isoformat()})
        return now.date()

    def _grant_found(self, context: EventContext, bucket: str, grant: exemptions.Grant) -> Outcome:
        # Not the drift's actor: who granted it is unknown (no tagging event was seen).
        lapses = utc_now().date() + timedelta(days=self.settings.max_exemption_days)
        found = grants.describe(grant.to_record())
        reason = (
            f"exemption found in effect and not recorded before ({found}), "
            f"while judging {context.what}: first recorded now; without an end date it lapses on "
            f"{lapses.isoformat()}"
        )
        return Outcome(
            bucket=bucket,
            control=exemptions.CHANGE_CONTROL,
            status=Status.EXEMPTED,
            reason=reason,
            after=grant.to_record(),
            region=context.region,
            found_by=context.found_by,
        )

    def _exemption_change(self, record: CloudTrailRecord, context: EventContext) -> Outcome:
        """A bucket tagging call: the bucket's tags, read fresh, against the last recorded grant.

        A change of exemption (granted, changed, removed) is audited and notified with the
        caller; a tagging call that leaves the exemption as it was is ignored, quietly.
        """
        bucket = str(record.bucket_name)
        base = replace(
            ignored("", record), control=exemptions.CHANGE_CONTROL, region=context.region
        )
        try:
            tags = exemptions.read_tags(client("s3", context.region), bucket)
            records = self._grant_records(context, bucket)
        except ClientError as error:
            outcome = self._classify(error, base)
            self.report(outcome)
            return outcome
        previous = grants.last_tag_grant(records)
        change = grants.judge_change(tags, previous, records, self.settings, utc_now().date())
        if change is None:
            return replace(base, reason="the tagging call changed no exemption")
        outcome = replace(
            base,
            status=change.status,
            reason=change.reason,
            before=change.before,
            after=change.after,
            warnings=list(change.warnings),
        )
        self.report(outcome)
        return outcome

    def _unusable_exemption(
        self, step: Step, context: EventContext, subject: str, state: State
    ) -> list[str]:
        """A sweep (no event) says, compliant or not, that an exemption would not be honoured
        (no reason, expired, not a date): its owners learn it before a fix overrides it. Events
        do not, to spare a tags read per compliant event."""
        if context.record is not None or context.tags_unreadable:
            return []
        try:
            exemption = self._exemption(step.control, context, subject, state)
        except ClientError as error:
            # Tags the sweep may not read (a bucket policy's Deny) change nothing for a compliant
            # bucket: it stays compliant rather than failing on a read it did not need. A check
            # that finds drift still reads them: it must know the exemption before a fix.
            logger.info("tags not read", extra={"bucket": subject, "error": error_code(error)})
            context.tags_unreadable = True
            return []
        return [exemption.note] if exemption.note and not exemption.exempt else []

    def _website_warning(self, control: Control, context: EventContext, bucket: str) -> list[str]:
        if bucket not in context.websites:
            s3 = client("s3", context.region)
            context.websites[bucket] = website.read_website(s3, bucket)
        found = context.websites[bucket]
        return [website.website_note(found, control.id, self.settings)] if found else []

    def _notice_due(self, outcome: Outcome) -> bool:
        """Exempted drift is notified when its bucket and control had no notified exempted
        drift in the last day (one Query); the notice counts the drifts of that day."""
        table = self.settings.audit_table
        drift = outcome.control != exemptions.CHANGE_CONTROL
        if outcome.status is not Status.EXEMPTED or not drift or not table or not outcome.bucket:
            return True
        exempted = Status.EXEMPTED.value
        outcome.audit_id = outcome.audit_id or audit.audit_id_for(outcome)
        since = utc_now() - DIGEST_PERIOD
        records = audit.recent_notices(
            client("dynamodb"),
            table,
            outcome.bucket,
            str(outcome.control),
            since,
            settings=self.settings,
        )
        # An earlier attempt at this very event is no earlier notice.
        others = [
            r for r in records if r.get("audit_id") != outcome.audit_id and r["status"] == exempted
        ]
        if any(r.get("notified") for r in others):
            return False
        if others:
            outcome.warnings.append(
                f"exempted drift of {outcome.control} on this bucket {len(others) + 1} times in "
                "the last 24 hours; BucketWarden notifies it at most once a day (every drift "
                "has its audit record)"
            )
        return True

    @staticmethod
    def _classify(error: ClientError, outcome: Outcome) -> Outcome:
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

    # -- reporting ----------------------------------------------------------------------------

    def report(self, outcome: Outcome) -> None:
        """Audit, notify and count one outcome (never in a dry run)."""
        change = outcome.control == exemptions.CHANGE_CONTROL
        if self.settings.dry_run or (outcome.status not in REPORTED and not change):
            return
        # A pair held by the flap breaker is escalated once, then only audited while the hold
        # lasts; exempted drift of one pair is notified at most once a day. The record says
        # whether it was notified (set before it is written: the digest reads it).
        quiet_hold = outcome.flapping and not outcome.escalation
        if self.settings.topic_arn and self.notify_each and not quiet_hold:
            outcome.notified = self._notice_due(outcome)
        if self.settings.audit_table:
            audit.record(
                client("dynamodb"), self.settings.audit_table, outcome, settings=self.settings
            )
        if outcome.notified and self.settings.topic_arn:
            notify.publish(client("sns"), self.settings.topic_arn, outcome, self.settings)
        if change and outcome.status in CHANGE_STATUSES:
            metrics.emit("ExemptionChanges", exemptions.CHANGE_CONTROL)
        else:
            metrics.record(outcome)
        log = logger.warning if outcome.status is Status.FAILED else logger.info
        log("outcome", extra={"outcome": outcome.to_dict()})


def _note_changes(steps: list[Step], control: Control, changes: list[str]) -> None:
    """Record, on every outcome of the surface, the edits found between its read and the write."""
    if changes:
        note = (
            f"the {control.surface} changed while the fix was prepared ({'; '.join(changes)}): "
            "judged again on the new one, the edit is kept"
        )
        for step in steps:
            step.outcome.warnings = [*step.outcome.warnings, note]


def _closes_exposure(planned: list[Step]) -> bool:
    return any(step.control.closes_public_exposure for step in planned)


def _note_overridden(planned: list[Step], control: Control, changes: int) -> None:
    note = (
        f"the {control.surface} changed {changes} times while the fix was prepared; public "
        "exposure is closed anyway, from the latest read, so an edit made after it may be replaced"
    )
    for step in planned:
        step.outcome.warnings = [*step.outcome.warnings, note]


def _failed_call(record: CloudTrailRecord) -> str | None:
    return f"the call failed ({record.errorCode}), nothing changed" if record.errorCode else None


def surface_groups(controls: list[Control]) -> list[list[Control]]:
    """Consecutive controls of one surface form one group (one read-modify-write)."""
    groups: list[list[Control]] = []
    for control in controls:
        if groups and groups[-1][0].surface == control.surface:
            groups[-1].append(control)
        else:
            groups.append([control])
    return groups


def _elapsed_ms(start: datetime | None, end: datetime) -> int | None:
    if start is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))
