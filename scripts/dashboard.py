"""The operators' CloudWatch dashboard of template.yaml, written from the catalogue's families.

Per-control figures come from SEARCH expressions over the `BucketWarden` namespace and its
`Control` dimension, so a control added to the catalogue appears without an edit here; the log
groups and dead-letter queues are the families' (and the sweep's), named in the template.
"""

from __future__ import annotations

import json
from typing import Any

from bucketwarden.metrics import NAMESPACE

WIDTH, HEIGHT = 12, 6
FIVE_MINUTES, ONE_DAY = 300, 86_400


def _search(metric: str, stat: str, period: int = FIVE_MINUTES) -> str:
    return f"SEARCH('{{{NAMESPACE},Control}} MetricName=\"{metric}\"', '{stat}', {period})"


def _per_control(title: str, metric: str, stat: str = "Sum", **extra: Any) -> dict[str, Any]:
    """One line per control: `metric` by its `Control` dimension."""
    return {
        "type": "metric",
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stacked": False,
            "metrics": [
                [{"expression": _search(metric, stat), "id": "e1", "period": FIVE_MINUTES}]
            ],
            **extra,
        },
    }


def _time_to_remediate(percentile: str) -> dict[str, Any]:
    return _per_control(
        f"Time to remediate, {percentile} per control (ms)",
        "TimeToRemediate",
        stat=percentile,
        yAxis={"left": {"label": "ms", "showUnits": False}},
    )


def _dead_letters(queues: list[str]) -> dict[str, Any]:
    metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"${{{queue}.QueueName}}"]
        for queue in queues
    ]
    return {
        "type": "metric",
        "properties": {
            "title": "Dead-letter queue depth (events no function could handle)",
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stat": "Maximum",
            "period": FIVE_MINUTES,
            "metrics": metrics,
        },
    }


def _last_sweep() -> dict[str, Any]:
    """The latest sweep's compliance per control (the sweep publishes it once per run)."""
    expressions = [
        [{"expression": _search(metric, "Maximum", ONE_DAY), "id": f"e{n}", "period": ONE_DAY}]
        for n, metric in enumerate(("CompliantBuckets", "NoncompliantBuckets", "ExemptedBuckets"))
    ]
    return {
        "type": "metric",
        "properties": {
            "title": "Last sweep: compliant, noncompliant and exempted subjects per control",
            "region": "${AWS::Region}",
            "view": "bar",
            "period": ONE_DAY,
            "metrics": expressions,
        },
    }


def _action_log(log_groups: list[str]) -> dict[str, Any]:
    sources = " | ".join(f"SOURCE '{group}'" for group in log_groups)
    query = (
        f"{sources} | fields @timestamp, outcome.control as control, outcome.bucket as subject, "
        "outcome.status as status, outcome.reason as reason, outcome.account as account "
        "| filter message = 'outcome' | sort @timestamp desc | limit 100"
    )
    return {
        "type": "log",
        "width": 24,
        "height": 8,
        "properties": {
            "title": "Action log: every reported outcome, newest first",
            "region": "${AWS::Region}",
            "query": query,
            "view": "table",
        },
    }


def dashboard_body(families: list[str], logical_ids: dict[str, str]) -> str:
    """The dashboard's JSON, for `Fn::Sub`: `families` their ids, `logical_ids` family → the
    logical-id prefix of its resources (PublicAccess)."""
    names = [*families, "sweep"]
    prefixes = [*(logical_ids[family] for family in families), "Sweep"]
    widgets = [
        _per_control("Findings per control", "Findings"),
        _per_control("Remediations per control", "Remediations"),
        _per_control("Remediation failures per control", "RemediationFailures"),
        _per_control("Flap escalations per control", "FlapEscalations"),
        _time_to_remediate("p50"),
        _time_to_remediate("p90"),
        _dead_letters([f"{prefix}DeadLetterQueue" for prefix in prefixes]),
        _last_sweep(),
        _action_log([f"/aws/lambda/${{AWS::StackName}}-{name}" for name in names]),
    ]
    for widget in widgets:
        widget.setdefault("width", WIDTH)
        widget.setdefault("height", HEIGHT)
    return json.dumps({"widgets": widgets}, indent=2)
