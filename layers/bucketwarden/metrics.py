"""CloudWatch metrics in Embedded Metric Format, one set per control (dimension `Control`)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from bucketwarden.outcome import Outcome, Status

NAMESPACE = "BucketWarden"

_COUNTS = {
    Status.REMEDIATED: ("Findings", "Remediations"),
    Status.NONCOMPLIANT: ("Findings",),
    Status.EXEMPTED: ("Findings", "Exemptions"),
    Status.FAILED: ("Findings", "RemediationFailures"),
}


def emit(name: str, control: str, value: float = 1, unit: str = MetricUnit.Count) -> None:
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"Control": control},
    ):
        pass


def record(outcome: Outcome) -> None:
    control = outcome.control or "none"
    for name in _COUNTS.get(outcome.status, ()):
        emit(name, control)
    if outcome.status is Status.REMEDIATED and outcome.time_to_remediate_ms is not None:
        emit("TimeToRemediate", control, outcome.time_to_remediate_ms, MetricUnit.Milliseconds)
