"""What a sweep found, as totals: carried from one invocation to the next, notified once.

Kept apart from the sweep itself so that the notifications (notify.py) can describe a summary
without importing the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bucketwarden.outcome import Outcome, Status

# Outcomes that are not findings: nothing was wrong, or nothing was judged.
NOT_FINDINGS = frozenset({Status.COMPLIANT, Status.IGNORED, Status.SKIPPED})
# What a sweep's outcomes can be (an enabled control is never "ignored"), findings first.
SWEEP_STATUSES = (
    Status.REMEDIATED,
    Status.NONCOMPLIANT,
    Status.EXEMPTED,
    Status.FAILED,
    Status.COMPLIANT,
    Status.SKIPPED,
)


@dataclass
class Tally:
    """Running totals of a sweep, carried from one invocation to the next."""

    by_control: dict[str, Counter[str]] = field(default_factory=dict)
    # Bucket → how many of its outcomes were findings (noncompliant, remediated, failed...).
    findings_by_bucket: Counter[str] = field(default_factory=Counter)
    subjects: int = 0
    # Subjects with at least one finding (kept apart: findings_by_bucket may be trimmed).
    flagged: int = 0
    # Bucket → its compliant checks that carry a warning: an exemption that would not be
    # honoured (no reason, expired), which no fix or finding reports yet.
    warned_by_bucket: Counter[str] = field(default_factory=Counter)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.control is None:
                continue
            self.by_control.setdefault(outcome.control, Counter())[outcome.status.value] += 1
            if outcome.status is Status.COMPLIANT and outcome.warnings:
                self.warned_by_bucket[str(outcome.bucket)] += 1
            if outcome.status not in NOT_FINDINGS:
                subject = str(outcome.bucket)
                if subject not in self.findings_by_bucket:
                    self.flagged += 1
                self.findings_by_bucket[subject] += 1

    @property
    def findings(self) -> int:
        return sum(
            count
            for counts in self.by_control.values()
            for status, count in counts.items()
            if Status(status) not in NOT_FINDINGS
        )

    def worst(self, count: int = 10) -> list[tuple[str, int]]:
        return self.findings_by_bucket.most_common(count)

    def to_dict(self, worst: int | None = None) -> dict[str, Any]:
        """The totals as JSON; with `worst`, only that many subjects with the most findings.

        Trimming loses nothing for a sweep carried from one invocation to the next: a subject
        is judged in one invocation only, so its count is final and a subject left out could
        never have climbed back among the worst.
        """
        kept = self.findings_by_bucket if worst is None else self.worst(worst)
        warned = self.warned_by_bucket if worst is None else self.warned(worst)
        return {
            "by_control": {c: dict(counts) for c, counts in self.by_control.items()},
            "findings_by_bucket": dict(kept),
            "subjects": self.subjects,
            "flagged": self.flagged,
            "warned_by_bucket": dict(warned),
        }

    def warned(self, count: int = 10) -> list[tuple[str, int]]:
        return self.warned_by_bucket.most_common(count)

    def merge(self, other: Tally) -> None:
        """Add another account's totals (an organization's summary): subjects are distinct
        across accounts (bucket names are global; accounts and access point ARNs name theirs),
        so the worst of each account's kept worst are the organization's worst."""
        for control, counts in other.by_control.items():
            self.by_control.setdefault(control, Counter()).update(counts)
        self.findings_by_bucket.update(other.findings_by_bucket)
        self.warned_by_bucket.update(other.warned_by_bucket)
        self.subjects += other.subjects
        self.flagged += other.flagged

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Tally:
        data = data or {}
        by_control = {c: Counter(counts) for c, counts in data.get("by_control", {}).items()}
        findings = Counter(data.get("findings_by_bucket", {}))
        flagged = data.get("flagged", len(findings))
        warned = Counter(data.get("warned_by_bucket", {}))
        return cls(by_control, findings, data.get("subjects", 0), flagged, warned)


# An account of an organization's sweep: swept, or not reached (its member role missing or
# refusing the hub).
SWEPT = "swept"
UNAVAILABLE = "unavailable"


class AccountLine(NamedTuple):
    """One account in an organization's summary."""

    account: str
    status: str
    findings: int = 0
    flagged: int = 0
    subjects: int = 0
    reason: str | None = None

    def rank(self) -> tuple[int, int, int, str]:
        """Worst first: an account not reached (nothing is known of it, and its role needs a
        person), then the most findings, then the most subjects with findings."""
        return (0 if self.status == UNAVAILABLE else 1, -self.findings, -self.flagged, self.account)

    def to_dict(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "account": self.account,
            "status": self.status,
            "findings": self.findings,
            "flagged": self.flagged,
            "subjects": self.subjects,
        }
        if self.reason is not None:
            line["reason"] = self.reason
        return line


@dataclass(frozen=True)
class SweepSummary:
    """A whole sweep (every invocation of it): its one notification and its metrics."""

    sweep_id: str
    started_at: str
    finished_at: str
    invocations: int
    # The controls the sweep ran, in catalogue order (each has a line, findings or not).
    controls: tuple[str, ...]
    tally: Tally
    worst_count: int = 10
    # An organization's sweep: every account, worst first (see AccountLine.rank); empty for a
    # single account's.
    accounts: tuple[AccountLine, ...] = ()

    @property
    def buckets(self) -> int:
        return self.tally.subjects

    def counts(self, control: str) -> dict[str, int]:
        """Outcomes of one control by status, every status present (zeros included)."""
        found = self.tally.by_control.get(control, Counter())
        return {status.value: found.get(status.value, 0) for status in SWEEP_STATUSES}

    def worst(self) -> list[tuple[str, int]]:
        return self.tally.worst(self.worst_count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "sweep-summary",
            "sweep_id": self.sweep_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "invocations": self.invocations,
            "buckets": self.buckets,
            "findings": self.tally.findings,
            "flagged": self.tally.flagged,
            "by_control": {control: self.counts(control) for control in self.controls},
            "worst": [{"subject": name, "findings": count} for name, count in self.worst()],
            "exemption_warnings": [
                {"bucket": name, "checks": count} for name, count in self.warned()
            ],
            **({"accounts": [line.to_dict() for line in self.accounts]} if self.accounts else {}),
        }

    def unavailable(self) -> list[AccountLine]:
        return [line for line in self.accounts if line.status == UNAVAILABLE]

    def warned(self) -> list[tuple[str, int]]:
        """Buckets whose compliant checks carry a warning (an exemption not honoured)."""
        return self.tally.warned(self.worst_count)
