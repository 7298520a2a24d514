"""CloudWatch metrics in Embedded Metric Format: one metric set per outcome, dimension `Control`.

In an organization, only what concerns a member account as a whole (its member role cannot be
assumed: MemberRoleUnavailable) has the dimension `Account` instead: a metric per account and
control would multiply the custom metrics (and their cost) by the number of accounts.

EphemeralMetrics keeps no state between sets, so each outcome's metrics carry its own control,
and POWERTOOLS_METRICS_DISABLED silences them (the CLI does, as its output is the report).
At the end of a sweep, one set per control gives the account's compliance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from bucketwarden.outcome import Outcome, Status

NAMESPACE = "BucketWarden"

# Where metric sets go instead of stdout (CloudWatch Logs reads EMF there in Lambda): the local
# mode passes one that sends them to the emulator's CloudWatch.
MetricSink = Callable[[dict[str, Any]], None]

_COUNTS = {
    Status.REMEDIATED: ("Findings", "Remediations"),
    Status.NONCOMPLIANT: ("Findings",),
    Status.EXEMPTED: ("Findings", "Exemptions"),
    Status.FAILED: ("Findings", "RemediationFailures"),
}


# Compliance after a sweep, by the statuses of its outcomes: a remediated subject complies now;
# a skipped one (deleted meanwhile) counts nowhere.
_COMPLIANCE = {
    "CompliantBuckets": (Status.COMPLIANT, Status.REMEDIATED),
    "NoncompliantBuckets": (Status.NONCOMPLIANT, Status.FAILED),
    "ExemptedBuckets": (Status.EXEMPTED,),
}


class Metrics:
    """Publishes metric sets: printed as EMF (Lambda), or handed to `sink` when one is given."""

    def __init__(self, sink: MetricSink | None = None) -> None:
        self.sink = sink

    def _publish(
        self, of: str, values: dict[str, tuple[float, MetricUnit]], dimension: str = "Control"
    ) -> None:
        """Publish `values` for `of`, the value of `dimension` (a control, or an account)."""
        metric_set = EphemeralMetrics(namespace=NAMESPACE)
        metric_set.add_dimension(name=dimension, value=of)
        for name, (value, unit) in values.items():
            metric_set.add_metric(name=name, unit=unit, value=value)
        if self.sink is None:
            metric_set.flush_metrics()
        else:
            self.sink(dict(metric_set.serialize_metric_set()))

    def emit(self, name: str, control: str) -> None:
        """Count one occurrence of `name` for `control` (e.g. LoopSuppressed, InvalidEvents)."""
        self._publish(control, {name: (1, MetricUnit.Count)})

    def emit_account(self, name: str, account: str) -> None:
        """Count one occurrence of `name` for a member `account` (dimension `Account`)."""
        self._publish(account, {name: (1, MetricUnit.Count)}, dimension="Account")

    def record(self, outcome: Outcome) -> None:
        values = dict.fromkeys(_COUNTS.get(outcome.status, ()), (1.0, MetricUnit.Count))
        if outcome.escalation:
            values["FlapEscalations"] = (1.0, MetricUnit.Count)
        if outcome.status is Status.REMEDIATED and outcome.time_to_remediate_ms is not None:
            values["TimeToRemediate"] = (outcome.time_to_remediate_ms, MetricUnit.Milliseconds)
        if values:
            self._publish(outcome.control or "none", values)

    def compliance(self, control: str, counts: Mapping[str, int]) -> None:
        """One control's subjects after a sweep (buckets; the account or access points for
        their controls), from its outcome `counts` by status. Zeros are sent too: a graph of
        NoncompliantBuckets must fall to 0, not stop."""
        values = {
            name: (
                float(sum(counts.get(status.value, 0) for status in statuses)),
                MetricUnit.Count,
            )
            for name, statuses in _COMPLIANCE.items()
        }
        self._publish(control, values)
