"""Reporters: what becomes of the engine's outcomes. The engine decides; a reporter records.

- `EventReporter`: the event path. Each reported outcome is audited, notified and counted.
- `SweepReporter`: the sweep. Audited and counted; people get one summary at the end instead of
  a notification per finding (the event path has sent those).
- Either, given a `FindingsExporter` (SecurityHubExport on), also imports findings into Security
  Hub: the event path each outcome's at once; the sweep queues them and imports in batches when
  it flushes, passing the earlier findings whose subject it found compliant (securityhub.py).
- `DryRunReporter`: a dry run (`scan`, `remediate --dry-run`, DRY_RUN=true). Records nothing: no
  audit record, no notification, no metric.

Each is given what it writes to (the audit store, the notifier, the metrics publisher): the
handlers build the production ones (services.py), the CLI and the local mode their own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from bucketwarden.audit import AuditStore, audit_id_for
from bucketwarden.exemptions import CHANGE_CONTROL
from bucketwarden.metrics import Metrics
from bucketwarden.notify import Notifier
from bucketwarden.outcome import REPORTED, Outcome, Status, utc_now

# The sweep's summary, only named here: event functions never load the sweep's modules.
if TYPE_CHECKING:
    from bucketwarden.securityhub import FindingsExporter
    from bucketwarden.summary import SweepSummary

logger = Logger(service="bucketwarden", child=True)

# Exempted drift of one bucket and control is notified at most once in this period.
DIGEST_PERIOD = timedelta(hours=24)
# Exemption changes (granted, honoured or not, removed): counted as ExemptionChanges.
CHANGE_STATUSES = frozenset({Status.EXEMPTED, Status.NONCOMPLIANT, Status.COMPLIANT})


class Reporter(Protocol):
    """What the engine and the sweep hand their outcomes to."""

    def count(self, name: str, control: str) -> None:
        """Count one occurrence of `name` (LoopSuppressed, InvalidEvents) for `control`."""

    def count_account(self, name: str, account: str) -> None:
        """Count one occurrence of `name` (MemberRoleUnavailable) for a member `account`."""

    def write_ahead(self, outcome: Outcome, planned: Any) -> None:
        """Record a fix about to be made (`planned` is the state it writes)."""

    def report(self, outcome: Outcome) -> None:
        """Record one decided outcome."""

    def summarize(self, summary: SweepSummary) -> None:
        """Record a finished sweep."""

    def flush(self) -> None:
        """Send what is queued (the sweep's Security Hub findings) before the run ends."""


class DryRunReporter:
    """Records nothing: a dry run shows what it would do, and leaves no trace."""

    def count(self, name: str, control: str) -> None:
        return None

    def count_account(self, name: str, account: str) -> None:
        return None

    def write_ahead(self, outcome: Outcome, planned: Any) -> None:
        return None

    def report(self, outcome: Outcome) -> None:
        return None

    def summarize(self, summary: SweepSummary) -> None:
        return None

    def flush(self) -> None:
        return None


class EventReporter:
    """Audits, notifies and counts each reported outcome."""

    # Whether each outcome is notified (the sweep notifies one summary instead).
    notifies_each = True

    def __init__(
        self,
        store: AuditStore,
        notifier: Notifier | None,
        metrics: Metrics,
        findings: FindingsExporter | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.metrics = metrics
        self.findings = findings

    def count(self, name: str, control: str) -> None:
        self.metrics.emit(name, control)

    def count_account(self, name: str, account: str) -> None:
        self.metrics.emit_account(name, account)

    def write_ahead(self, outcome: Outcome, planned: Any) -> None:
        """Record the fix as `pending` before it is made (see AuditStore.write_ahead)."""
        if self.store.table:
            self.store.write_ahead(outcome, planned)

    def report(self, outcome: Outcome) -> None:
        """Audit, notify and count one outcome (and its Security Hub finding, first: a warning
        of the import is then in the record and the notification)."""
        change = outcome.control == CHANGE_CONTROL
        if self.findings is not None and not change:
            self._find(self.findings, outcome)
        if outcome.status not in REPORTED and not change:
            return
        # A pair held by the flap breaker is escalated once, then only audited while the hold
        # lasts; exempted drift of one pair is notified at most once a day. The record says
        # whether it was notified (set before it is written: the digest reads it).
        quiet_hold = outcome.flapping and not outcome.escalation
        if self.notifier is not None and self.notifies_each and not quiet_hold:
            outcome.notified = self._notice_due(outcome)
        if self.store.table:
            self.store.record(outcome)
        if outcome.notified and self.notifier is not None:
            self.notifier.publish(outcome)
        if change and outcome.status in CHANGE_STATUSES:
            self.metrics.emit("ExemptionChanges", CHANGE_CONTROL)
        else:
            self.metrics.record(outcome)
        log = logger.warning if outcome.status is Status.FAILED else logger.info
        log("outcome", extra={"outcome": outcome.to_dict()})

    def _find(self, findings: FindingsExporter, outcome: Outcome) -> None:
        """The outcome's finding: imported now by the event path, queued by the sweep. Its
        audit id is set first, for the rollback command the finding gives."""
        if self.store.table and outcome.status is Status.REMEDIATED:
            outcome.audit_id = outcome.audit_id or audit_id_for(outcome)
        if self.notifies_each:
            findings.export(outcome)
        else:
            findings.add(outcome)

    def flush(self) -> None:
        if self.findings is not None:
            self.findings.flush()

    def summarize(self, summary: SweepSummary) -> None:
        """The sweep's compliance metrics, and its one notification."""
        for control in summary.controls:
            self.metrics.compliance(control, summary.counts(control))
        if self.notifier is not None:
            self.notifier.publish_summary(summary)

    def _notice_due(self, outcome: Outcome) -> bool:
        """Exempted drift is notified when its bucket and control had no notified exempted
        drift in the last day (one Query); the notice counts the drifts of that day."""
        drift = outcome.control != CHANGE_CONTROL
        exempted_drift = outcome.status is Status.EXEMPTED and drift
        if not exempted_drift or not self.store.table or not outcome.bucket:
            return True
        outcome.audit_id = outcome.audit_id or audit_id_for(outcome)
        since = utc_now() - DIGEST_PERIOD
        records = self.store.recent_notices(outcome.bucket, str(outcome.control), since)
        # An earlier attempt at this very event is no earlier notice.
        others = [
            r
            for r in records
            if r.get("audit_id") != outcome.audit_id and r["status"] == Status.EXEMPTED.value
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


class SweepReporter(EventReporter):
    """Audits and counts each outcome; people get the sweep's one summary (`summarize`)."""

    notifies_each = False
