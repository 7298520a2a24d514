"""The engine: one CloudTrail record in, one outcome per control of the family out.

parse → ignore failed calls and the service's own changes → fresh read → each control judges the
state → its gates, in order (an earlier attempt's fix, compliant, exempted, notify only, held by
the flap breaker) → the fixes of the surface combined, recorded ahead, written once → verify by
re-reading → the reporter (audit record, notification, metrics: see reporter.py).

The engine decides; what it records goes through the reporter and the audit store it is given,
so that the event path, the sweep, a dry run and the local mode each pass their own.

AccessDenied and a bucket deleted meanwhile become outcomes. Any other AWS error (throttling
that outlived the adaptive retries, 5xx) is raised, so that Lambda retries the event and, after
its retries, sends it to the dead-letter queue: nothing is dropped silently.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from bucketwarden import exemptions, flap, notify, website
from bucketwarden.accounts import (
    SWEEP_ROLE_SUFFIX,
    AccountAccess,
    MemberRoleUnavailable,
    account_access,
    is_account_id,
    member_role_names,
)
from bucketwarden.audit import PENDING, AuditStore
from bucketwarden.aws import PlannedWrites, ReadOnce
from bucketwarden.catalogue import FAMILIES, controls_of
from bucketwarden.context import EventContext, Step, classify, ignored
from bucketwarden.controls.base import CannotFix, Control, Evaluation, State
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.exemption_gate import ExemptionGate
from bucketwarden.organization import Organization, hub_organization
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.reporter import Reporter
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:  # the sweep parses no event and never loads the event models
    from bucketwarden.events import CloudTrailRecord

__all__ = ["Engine", "EventContext", "ignored", "surface_groups"]

logger = Logger(service="bucketwarden", child=True)

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# An IAM role's ARN without a path (the member roles have none): partition, account, name.
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/([\w+=,.@-]+)$")
OWN_CHANGE = "change made by BucketWarden itself"
# How many times a surface is judged when it keeps changing between the read and the write.
MAX_JUDGEMENTS = 3
EARLIER_ATTEMPT = "(fixed by an earlier attempt at this event)"


@dataclass
class Judged:
    """One control's judgement of the state, as its gates see it."""

    step: Step
    evaluation: Evaluation
    context: EventContext
    subject: str
    # The state the control judged: the surface as read, with the fixes of the controls before.
    state: State

    @property
    def outcome(self) -> Outcome:
        return self.step.outcome


# A gate gives the outcome that decides the control (it stops there), or None to go on.
Gate = Callable[[Judged], Outcome | None]


def _as_judged(reason: str, planned: list[Step], state: State, before: State) -> str:
    """The reason, saying so when the control judged the state that earlier controls' fixes
    leave rather than the surface as read (which the outcome's `before` shows)."""
    if not planned or state == before:
        return reason
    fixed_by = ", ".join(step.control.id for step in planned)
    return f"after the fix of {fixed_by}: {reason}"


class Engine:
    """Runs the controls of one family (or the sweep's) and hands each outcome to `reporter`;
    `store` is the audit table it reads (earlier attempts, flap records, exemption grants).

    In organization mode (settings.member_role_name) an event of a member account is acted on
    there with clients from `accounts` (made from the settings when not given); the reporter
    and the store stay the hub's. `organization` tells the OUs of an account, for allowlist
    entries scoped to them (a handler passes one kept for the function instance)."""

    def __init__(
        self,
        family: str,
        settings: Settings,
        reporter: Reporter,
        store: AuditStore,
        controls: tuple[Control, ...] | None = None,
        *,
        accounts: AccountAccess | None = None,
        organization: Organization | None = None,
    ) -> None:
        self.family = family
        self.controls = controls_of(family) if controls is None else controls
        self.settings = settings
        self.reporter = reporter
        self.store = store
        self.accounts = accounts or account_access(settings)
        self.organization = organization or hub_organization()
        self.exemption_gate = ExemptionGate(settings, store, reporter, self.organization)
        # Checked in this order for each control that judged the state: the first gate that
        # gives an outcome decides the control; past them all, its fix is planned.
        self.gates: tuple[Gate, ...] = (
            self._prior_attempt,
            self._compliant,
            self._exempted,
            self._website_note,
            self._notify_only,
            self._flapping,
        )

    # -- entry points -------------------------------------------------------------------------

    def handle_event(self, event: Any) -> list[Outcome]:
        """Parse and handle one EventBridge event or bare CloudTrail record."""
        # Imported here: the sweep, which parses no event, then never loads the event models.
        from bucketwarden.events import EventRejected, parse_record

        try:
            record = parse_record(event)
        except EventRejected as rejected:
            logger.warning(
                "event rejected", extra={"event_id": rejected.event_id, "reason": rejected.reason}
            )
            self.reporter.count("InvalidEvents", "none")
            return [ignored(f"rejected: {rejected.reason}", event_id=rejected.event_id)]
        return self.handle_record(record)

    def handle_record(self, record: CloudTrailRecord, tried_before: bool = False) -> list[Outcome]:
        """Handle one record; `tried_before` when an earlier attempt at it may have written."""
        skip = self.reason_to_skip(record)
        if skip:
            if skip == OWN_CHANGE:
                for control in self._controls_for(record):
                    self.reporter.count("LoopSuppressed", control.id)
            logger.info(skip, extra={"event_id": record.eventID, "event_name": record.eventName})
            return [ignored(skip, record)]
        region = record.awsRegion if _REGION.match(record.awsRegion or "") else None
        account = record.recipient_account or self.settings.account_id
        context = EventContext(record, region, tried_before=tried_before, account=account)
        if self.accounts is not None and self.accounts.is_member(account):
            context.accounts = self.accounts
            try:
                self.accounts.reach(account)
            except MemberRoleUnavailable as unavailable:
                return self._unreachable(record, context, unavailable)
            # The member's own keys are judged as the account's (default-encryption).
            return self._in_account(str(account))._act(record, context)
        return self._act(record, context)

    def _act(self, record: CloudTrailRecord, context: EventContext) -> list[Outcome]:
        if self._handles_exemption_change(record):
            return [self.exemption_gate.change(record, context)]
        self._wait_for_baseline(record)
        outcomes: list[Outcome] = []
        for group in surface_groups(self._controls_for(record)):
            outcomes.extend(self.run_surface(group, context, group[0].subject(record)))
        return outcomes

    def _in_account(self, account: str) -> Engine:
        """This engine judging a member account's subjects: the settings name that account as
        the one whose KMS keys are its own; the reporter and the store stay the hub's."""
        settings = replace(self.settings, account_id=account)
        return Engine(
            self.family,
            settings,
            self.reporter,
            self.store,
            self.controls,
            accounts=self.accounts,
            organization=self.organization,
        )

    def _unreachable(
        self, record: CloudTrailRecord, context: EventContext, unavailable: MemberRoleUnavailable
    ) -> list[Outcome]:
        """The member role cannot be assumed: each control the event asks for fails with the
        reason, reported (audited, notified, counted) by the hub, and nothing is raised, as a
        retry would meet the same role (the next event or sweep tries again)."""
        reason = f"not checked: the member role of account {unavailable.account} is unavailable"
        reason = f"{reason} ({unavailable.reason})"
        self.reporter.count_account("MemberRoleUnavailable", unavailable.account)
        if self._handles_exemption_change(record):
            base = replace(ignored("", record), control=exemptions.CHANGE_CONTROL)
            outcome = replace(base, status=Status.FAILED, reason=reason, region=context.region)
            self.reporter.report(outcome)
            return [outcome]
        outcomes: list[Outcome] = []
        for control in self._controls_for(record):
            step = self._step(control, context, control.subject(record))
            if not step.decided:
                step.decide(replace(step.outcome, status=Status.FAILED, reason=reason))
            self.reporter.report(step.outcome)
            outcomes.append(step.outcome)
        return outcomes

    def reason_to_skip(self, record: CloudTrailRecord) -> str | None:
        """Why the event asks nothing of this family's controls, or None when it does."""
        # Another account's record (outside organization mode), or a call that failed: nothing
        # to look at.
        unusable = self._account_to_skip(record) or _failed_call(record)
        if unusable:
            return unusable
        if self._handles_exemption_change(record):
            # No loop guard: BucketWarden never tags a bucket, so a tagging call made with one
            # of its roles is audited like anyone's.
            return None if record.bucket_name else f"{record.eventName} names no bucket"
        controls = self._controls_for(record)
        if not controls:
            return self._unhandled(record)
        if not any(control.subject(record) for control in controls):
            return f"{record.eventName} names no {controls[0].scope}"
        if self._is_own_change(record):
            return OWN_CHANGE
        return None

    def _unhandled(self, record: CloudTrailRecord) -> str:
        if self._controls_for_event_name(record):
            return (
                f"{record.bucket_name} is a directory bucket: no control of the {self.family} "
                "family applies to it"
            )
        return f"{record.eventName} is not handled by the {self.family} family"

    def _account_to_skip(self, record: CloudTrailRecord) -> str | None:
        """Why the record's account is not acted on: another account's, in a single-account
        stack; one that is not an account id, in organization mode. (An envelope whose account
        is not the record's never gets here: see events.parse_record.)"""
        if not self.settings.organization_mode:
            return record.not_for(self.settings.account_id)
        claimed = record.recipient_account
        if claimed is not None and not is_account_id(claimed):
            return f"the record's account {claimed!r} is not an AWS account id"
        return None

    def _handles_exemption_change(self, record: CloudTrailRecord) -> bool:
        # Directory buckets have no bucket tagging calls (GetBucketTagging): their exemptions
        # come from the allowlist only.
        return (
            record.eventName in exemptions.CHANGE_EVENTS
            and self.family == exemptions.CHANGE_FAMILY
            and not is_directory_bucket(record.bucket_name)
        )

    def _controls_for(self, record: CloudTrailRecord) -> list[Control]:
        """The family's controls that the call asks for and that apply to what it names (a
        directory bucket gets only the controls that declare `directory_buckets`)."""
        return [c for c in self._controls_for_event_name(record) if c.applies_to(c.subject(record))]

    def _controls_for_event_name(self, record: CloudTrailRecord) -> list[Control]:
        return [c for c in self.controls if record.eventName in c.trigger_events]

    def _is_own_change(self, record: CloudTrailRecord) -> bool:
        """The call came from one of BucketWarden's functions: its role, and its session.

        The role alone is not enough: anyone allowed iam:PassRole could give it to a function
        of their own. Lambda names a function's role session after the function, so the session
        must be one of the service's function names too (and the S3 writes of each role are
        allowed only from its own function: see template.yaml).
        """
        identity = record.userIdentity
        role = identity.issuer_arn
        if role not in self.settings.service_role_arns and not self._is_member_role(role, record):
            return False
        return identity.session_name(role) in self.settings.service_function_names

    def _is_member_role(self, role: str | None, record: CloudTrailRecord) -> bool:
        """In organization mode: `role` is one of the member roles (any family's, or the
        sweep's) in the account the record is for. Its session must still be named after one
        of the service's functions, as the hub assumes it (see accounts.py)."""
        name = self.settings.member_role_name
        found = _ROLE_ARN.match(role or "")
        if name is None or found is None:
            return False
        account, role_name = found.groups()
        ours = member_role_names(name, (*FAMILIES, SWEEP_ROLE_SUFFIX))
        return role_name in ours and account == (
            record.recipient_account or self.settings.account_id
        )

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
        steps = [self._step(control, context, subject) for control in controls]
        active = [step for step in steps if not step.decided]
        if active and subject is not None:
            self._judge_surface(active, context, subject)
        # Controls of the surface that joined when it changed under the fix (see _join_surface).
        steps.extend(step for step in active if all(step is not other for other in steps))
        for step in steps:
            self.reporter.report(step.outcome)
        return [step.outcome for step in steps]

    def _step(self, control: Control, context: EventContext, subject: str | None) -> Step:
        """A control's step, decided already when the control is off or there is no subject."""
        mode = self.settings.mode(control.id, control.default_mode)
        step = Step(control, mode, context.base(control, mode, subject))
        if mode is Mode.OFF:
            why: str | None = f"{control.id} is off"
        elif subject is None:
            why = f"{context.what} names no {control.scope}"
        else:
            why = self._elsewhere(control, context, subject)
        if why:
            step.decide(replace(step.outcome, status=Status.IGNORED, reason=why))
        return step

    def _elsewhere(self, control: Control, context: EventContext, subject: str) -> str | None:
        """In organization mode, why a subject whose name says its account (an account id, an
        access point's ARN) is not acted on: another account than the one whose clients the
        context gives. None when it is that account's, or its name says none."""
        named = control.subject_account(subject)
        if not self.settings.organization_mode or named is None or context.account is None:
            return None
        if named == context.account:
            return None
        return f"the {control.scope} {subject} is not in account {context.account}, acted on here"

    def _judge_surface(self, steps: list[Step], context: EventContext, subject: str) -> None:
        """Evaluate and fix; a call that failed, or a fix refused, decides the steps left."""
        try:
            self._evaluate_and_fix(steps, context, subject)
        except ClientError as error:
            for step in _undecided(steps):
                step.decide(classify(error, step.outcome))
        except CannotFix as refusal:
            for step in _undecided(steps):
                reason = f"{step.outcome.reason}; not fixed: {refusal}"
                step.decide(replace(step.outcome, status=Status.FAILED, reason=reason))

    def _evaluate_and_fix(self, steps: list[Step], context: EventContext, subject: str) -> None:
        first = steps[0].control
        # A dry run plans its writes: later reads answer what they would have set.
        reads = PlannedWrites if self.settings.dry_run else ReadOnce
        api = reads(context.client(first.service, first.service_region), context.reads)
        before = first.observe(api, subject, self.settings, self.store)
        # Edits others made to the surface between the read and the write, as "was → is".
        changes: list[str] = []
        for judgement in range(1, MAX_JUDGEMENTS + 1):
            planned, desired = self._judge(steps, context, subject, before)
            _note_changes(steps, first, changes)
            if not planned:
                return
            # Recorded first, so that the read right before the write is the last call before it.
            self._write_ahead(planned, desired)
            last = judgement == MAX_JUDGEMENTS
            current = self._read_before_write(planned, api, subject, before, changes, last=last)
            if current is None:
                self._remediate(planned, context, api, subject, desired)
                return
            changes.append(f"{first.describe(before)} → {first.describe(current)}")
            before = current
            self._start_over(steps, context, subject)
        self._give_up(steps, first, changes, before)

    def _write_ahead(self, planned: list[Step], desired: State) -> None:
        for step in planned:
            self.reporter.write_ahead(step.outcome, desired)

    def _start_over(self, steps: list[Step], context: EventContext, subject: str) -> None:
        """Judged again from the fresh read: the fix keeps the edit (each control computes the
        whole desired state from what it reads), and the outcome records it. The outcome keeps
        its audit id: the next write-ahead (or the final record) replaces this one, so no
        pending record is left of a fix that was never made."""
        self._join_surface(steps, context, subject)
        for step in steps:
            base = context.base(step.control, step.mode, subject)
            step.reset(replace(base, audit_id=step.outcome.audit_id))

    def _read_before_write(
        self,
        planned: list[Step],
        api: Any,
        subject: str,
        judged: State,
        changes: list[str],
        *,
        last: bool,
    ) -> State | None:
        """The surface as changed since it was judged, or None: write the fix now."""
        control = planned[0].control
        if last and _closes_exposure(planned):
            # Edits that keep coming must not keep a bucket open: the last judgement is
            # written, and its outcomes say that an edit made meanwhile may be replaced.
            _note_overridden(planned, control, len(changes))
            return None
        return self._changed_meanwhile(control, api, subject, judged)

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
            mode = self.settings.mode(control.id, control.default_mode)
            if control.id in present:
                joined.append(present[control.id])
            elif (
                control.surface == surface and mode is not Mode.OFF and control.applies_to(subject)
            ):
                joined.append(Step(control, mode, context.base(control, mode, subject)))
        steps[:] = joined

    def _judge(
        self, steps: list[Step], context: EventContext, subject: str, before: State
    ) -> tuple[list[Step], State]:
        """Each control judges the state the previous ones' fixes leave, and its gates decide it
        or let its fix through: the steps to fix, and the desired state their fixes make."""
        state = before
        planned: list[Step] = []
        for step in steps:
            evaluation = step.control.evaluate_subject(subject, state, self.settings)
            # Set in place: if a later call fails, the outcome still shows what was found.
            step.outcome.before = before
            step.outcome.after = before
            step.outcome.reason = _as_judged(evaluation.reason, planned, state, before)
            decided = self._through_gates(Judged(step, evaluation, context, subject, state))
            if decided is not None:
                step.decide(decided)
                continue
            step.evaluation = evaluation
            state = evaluation.desired
            planned.append(step)
        return planned, state

    def _through_gates(self, judged: Judged) -> Outcome | None:
        """The outcome of the first gate that stops the control; None when all let it through."""
        for gate in self.gates:
            decided = gate(judged)
            if decided is not None:
                return decided
        return None

    # -- the gates, in their order ------------------------------------------------------------

    def _prior_attempt(self, judged: Judged) -> Outcome | None:
        """An earlier attempt at this event fixed it: its fix, found in place, is this one."""
        prior = self._prior_fix(judged.context, judged.outcome)
        if prior is None:
            return None
        if judged.evaluation.compliant:
            return self._confirmed(judged.outcome, prior, judged.context)
        if prior["status"] == PENDING:
            # The earlier attempt read the state before anything was changed.
            judged.outcome.before = prior["before"]
        return None

    def _compliant(self, judged: Judged) -> Outcome | None:
        """Nothing wrong: compliant (a sweep also says when an exemption would not be honoured)."""
        if not judged.evaluation.compliant:
            return None
        step = judged.step
        gate = self.exemption_gate
        notes = gate.unusable(step.control, judged.context, judged.subject, judged.state)
        step.outcome.warnings.extend(notes)
        return step.outcome

    def _exempted(self, judged: Judged) -> Outcome | None:
        """Drift that an exemption allows is reported, not fixed; one not honoured says why."""
        step = judged.step
        exemption = self.exemption_gate.exemption(
            step.control, judged.context, judged.subject, judged.state
        )
        if exemption.exempt:
            reason = f"{judged.evaluation.reason} ({exemption.note})"
            return replace(step.outcome, status=Status.EXEMPTED, reason=reason)
        if exemption.note:
            step.outcome.warnings.append(exemption.note)
        return None

    def _website_note(self, judged: Judged) -> Outcome | None:
        """Closing public read of a bucket that serves a website: say what stops working."""
        control = judged.step.control
        # Directory buckets serve no websites (and have no GetBucketWebsite).
        if is_directory_bucket(judged.subject):
            return None
        if judged.evaluation.public_read and control.checks_website:
            notes = self._website_warning(control, judged.context, judged.subject)
            judged.outcome.warnings.extend(notes)
        return None

    def _notify_only(self, judged: Judged) -> Outcome | None:
        """Notify mode (the stack's, or the allowlist's in the account), or drift no fix can
        mend: noncompliant, reported. Off in the account: ignored."""
        step = judged.step
        self._account_mode(step, judged.context)
        if step.mode is Mode.OFF:
            reason = f"{step.outcome.reason}; not acted on: {step.control.id} is off here"
            return replace(step.outcome, status=Status.IGNORED, reason=reason)
        if step.mode is Mode.NOTIFY or not judged.evaluation.fixable:
            return replace(step.outcome, status=Status.NONCOMPLIANT)
        return None

    def _account_mode(self, step: Step, context: EventContext) -> None:
        """The allowlist's mode for the control in the subject's account, when it lowers the
        stack's: the step and its outcome take it, and the reason names the entry."""
        choice = self.exemption_gate.mode(step.control, context, step.mode)
        outcome = step.outcome
        if choice.warning and choice.warning not in outcome.warnings:
            outcome.warnings.append(choice.warning)
        if choice.by is not None and choice.mode is not step.mode:
            step.mode = choice.mode
            outcome.mode = choice.mode.value
            outcome.reason = f"{outcome.reason} ({choice.by})"

    def _flapping(self, judged: Judged) -> Outcome | None:
        """Held by the flap breaker: reported, not fixed (a dry run asks too: one read shows
        the hold a real run would keep). A public-exposure control is never held."""
        step = judged.step
        verdict = self._flap_verdict(step.control, judged.subject)
        if verdict.hold:
            return self._held(step.outcome, verdict)
        step.flap_verdict = verdict
        return None

    # -- the fix ------------------------------------------------------------------------------

    def _changed_meanwhile(
        self, control: Control, api: Any, subject: str, judged: State
    ) -> State | None:
        """The surface read again right before the write, when it is no longer what was judged.

        Only for surfaces people edit (policies, ACLs); a dry run writes nothing it could lose.
        """
        if not control.recheck_before_write or self.settings.dry_run:
            return None
        api.forget()
        current = control.reread(api, subject, self.settings, judged, self.store)
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

    def _remediate(
        self, planned: list[Step], context: EventContext, api: Any, subject: str, desired: State
    ) -> None:
        last = planned[-1].control
        last.apply(api, subject, desired)
        before = planned[0].outcome.before
        after: State = last.verify(api, subject, self.settings, before, self.store)
        fixed_at = utc_now()
        moved = self._changed_after_write(last, after, desired)
        for step in planned:
            outcome = replace(step.outcome, after=after, fix_time=fixed_at.isoformat())
            if moved:
                outcome.warnings = [*outcome.warnings, moved]
            verdict = step.control.evaluate_subject(subject, after, self.settings)
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
        if not (context.tried_before and self.store.table):
            return None
        if outcome.control not in context.priors:
            context.priors[str(outcome.control)] = self._read_prior_fix(outcome)
        return context.priors[str(outcome.control)]

    def _read_prior_fix(self, outcome: Outcome) -> dict[str, Any] | None:
        prior = self.store.prior_record(outcome)
        if prior and prior["status"] in {PENDING, Status.REMEDIATED.value}:
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
        now = utc_now()
        settings = self.settings
        return flap.check(self.store, subject, control.id, now, settings, never_hold=never_hold)

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

    def _website_warning(self, control: Control, context: EventContext, bucket: str) -> list[str]:
        if bucket not in context.websites:
            s3 = context.client("s3")
            context.websites[bucket] = website.read_website(s3, bucket)
        found = context.websites[bucket]
        return [website.website_note(found, control.id, self.settings)] if found else []


def _undecided(steps: list[Step]) -> list[Step]:
    return [step for step in steps if not step.decided]


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
