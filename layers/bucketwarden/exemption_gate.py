"""The exemption gate: is drift of a control on a subject exempted, which mode does the
allowlist give the control in the subject's account, and what did a bucket tagging call change?

Tags are read once per bucket and event (on drift only; a sweep reads them always, to say which
exemptions would not be honoured), then the allowlist when the settings name one. A grant
without an end date counts its days from its first audit record (grants.py): a grant found in
effect and never recorded is recorded now, through the reporter. Allowlist entries scoped to
organizational units ask `organization` (injected) which OUs hold the account.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from bucketwarden import exemptions, grants
from bucketwarden.audit import AuditStore
from bucketwarden.aws import error_code
from bucketwarden.context import EventContext, classify, ignored
from bucketwarden.controls.base import Control, State
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.organization import Organization, PlacementLookup, no_organization
from bucketwarden.outcome import Outcome, Status, utc_now
from bucketwarden.reporter import Reporter
from bucketwarden.settings import ExemptionSource, Mode, Settings

if TYPE_CHECKING:  # the sweep parses no event and never loads the event models
    from bucketwarden.events import CloudTrailRecord

logger = Logger(service="bucketwarden", child=True)


class ExemptionGate:
    """Exemptions by tag and allowlist, the allowlist's modes per account, their grants'
    records, and exemption changes. Without `organization`, no entry scoped to an OU applies."""

    def __init__(
        self,
        settings: Settings,
        store: AuditStore,
        reporter: Reporter,
        organization: Organization | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.reporter = reporter
        self.placement: PlacementLookup = (
            organization.placement if organization is not None else no_organization
        )

    def exemption(
        self, control: Control, context: EventContext, subject: str, state: State
    ) -> exemptions.ExemptionCheck:
        """Whether drift of `control` on `subject` is exempted (and a note when it is not)."""
        bucket = control.exemption_bucket(subject, state)
        if bucket is None:
            return exemptions.ExemptionCheck(exempt=False)
        if bucket not in context.tags:
            # Directory buckets have no GetBucketTagging: the allowlist alone exempts them.
            directory = is_directory_bucket(bucket)
            tags = {} if directory else exemptions.read_tags(context.client("s3"), bucket)
            context.tags[bucket] = tags
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
            allowlist,
            bucket,
            control.id,
            self.settings,
            today,
            first_recorded=first_recorded,
            account=context.account,
            placement=self.placement,
        )
        # The allowlist's verdict when it has one; else what the tags said (an invalid tag, say).
        return listed if listed.exempt or listed.note else by_tag

    def mode(
        self, control: Control, context: EventContext, stack_mode: Mode
    ) -> exemptions.ModeChoice:
        """The control's mode in the subject's account: the allowlist's modes may lower the
        stack's there (asked on drift only, so a compliant subject costs no lookup). With
        ExemptionSource `tags` the parameter is not read at all, its modes included."""
        parameter = self.settings.exemptions_parameter
        tags_only = self.settings.exemption_source is ExemptionSource.TAGS
        if not parameter or tags_only or stack_mode is Mode.OFF:
            return exemptions.ModeChoice(stack_mode)
        allowlist = exemptions.load_allowlist(parameter)
        return exemptions.scoped_mode(
            allowlist,
            control.id,
            stack_mode,
            self.settings,
            account=context.account,
            placement=self.placement,
        )

    def unusable(
        self, control: Control, context: EventContext, subject: str, state: State
    ) -> list[str]:
        """A sweep (no event) says, compliant or not, that an exemption would not be honoured
        (no reason, expired, not a date): its owners learn it before a fix overrides it. Events
        do not, to spare a tags read per compliant event."""
        if context.record is not None or context.tags_unreadable:
            return []
        try:
            exemption = self.exemption(control, context, subject, state)
        except ClientError as error:
            # Tags the sweep may not read (a bucket policy's Deny) change nothing for a compliant
            # bucket: it stays compliant rather than failing on a read it did not need. A check
            # that finds drift still reads them: it must know the exemption before a fix.
            logger.info("tags not read", extra={"bucket": subject, "error": error_code(error)})
            context.tags_unreadable = True
            return []
        return [exemption.note] if exemption.note and not exemption.exempt else []

    def change(self, record: CloudTrailRecord, context: EventContext) -> Outcome:
        """A bucket tagging call: the bucket's tags, read fresh, against the last recorded grant.

        A change of exemption (granted, changed, removed) is audited and notified with the
        caller; a tagging call that leaves the exemption as it was is ignored, quietly.
        """
        bucket = str(record.bucket_name)
        base = replace(
            ignored("", record), control=exemptions.CHANGE_CONTROL, region=context.region
        )
        try:
            tags = exemptions.read_tags(context.client("s3"), bucket)
            records = self._grant_records(context, bucket)
        except ClientError as error:
            outcome = classify(error, base)
            self.reporter.report(outcome)
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
        self.reporter.report(outcome)
        return outcome

    def _grant_records(self, context: EventContext, bucket: str) -> list[dict[str, Any]]:
        """The bucket's exemption records, oldest first (none without an audit table)."""
        if bucket not in context.grant_records:
            context.grant_records[bucket] = (
                self.store.grant_records(bucket, exemptions.CHANGE_CONTROL)
                if self.store.table
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
        if self.store.table:
            self.reporter.report(self._grant_found(context, bucket, grant))
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
            account=context.account,
            region=context.region,
            found_by=context.found_by,
        )
