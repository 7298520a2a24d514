"""The operators' dashboard in template.yaml: what it shows exists, and it covers every family.

Its widgets read the metrics the functions publish (checked against what `Metrics` emits), the
dead-letter queues and the log groups of every family and of the sweep; its URL is an output.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bucketwarden.catalogue import FAMILIES
from bucketwarden.metrics import NAMESPACE, Metrics
from bucketwarden.outcome import Outcome, Status
from tests.test_template import camel, resources, template


def body() -> dict[str, Any]:
    """The dashboard's JSON with Fn::Sub's variables left as they are written."""
    text = resources()["Dashboard"]["Properties"]["DashboardBody"]["!Sub"]
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def widget(title_start: str) -> dict[str, Any]:
    [found] = [w for w in body()["widgets"] if w["properties"]["title"].startswith(title_start)]
    return found


def searched_metrics() -> set[str]:
    """Every metric the dashboard's SEARCH expressions ask of the BucketWarden namespace."""
    expressions = [
        line[0]["expression"]
        for w in body()["widgets"]
        if w["type"] == "metric"
        for line in w["properties"]["metrics"]
        if isinstance(line[0], dict)
    ]
    for expression in expressions:
        assert expression.startswith(f"SEARCH('{{{NAMESPACE},Control}} MetricName=")
    return {re.search(r'MetricName="(\w+)"', e).group(1) for e in expressions}  # type: ignore[union-attr]


def published_metrics() -> set[str]:
    """The metric names `Metrics` publishes for fixes, failures, flaps and a sweep's end."""
    sets: list[dict[str, Any]] = []
    metrics = Metrics(sink=sets.append)
    for status in Status:
        metrics.record(Outcome(bucket="b", control="versioning", status=status, reason="r"))
    fixed = Outcome(bucket="b", control="versioning", status=Status.REMEDIATED, reason="r")
    fixed.time_to_remediate_ms = 120
    fixed.escalation = "held"
    metrics.record(fixed)
    metrics.compliance("versioning", {"compliant": 1})
    return {m["Name"] for s in sets for m in s["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_every_metric_the_dashboard_shows_is_one_the_functions_publish() -> None:
    shown = searched_metrics()

    assert shown <= published_metrics()
    assert {
        "Findings",
        "Remediations",
        "RemediationFailures",
        "FlapEscalations",
        "TimeToRemediate",
        "CompliantBuckets",
        "NoncompliantBuckets",
        "ExemptedBuckets",
    } <= shown


def test_time_to_remediate_is_shown_at_p50_and_p90() -> None:
    for percentile in ("p50", "p90"):
        [[line]] = widget(f"Time to remediate, {percentile}")["properties"]["metrics"]
        assert f"'{percentile}'" in line["expression"]


def test_the_dead_letter_queues_of_every_family_and_the_sweep_are_shown() -> None:
    metrics = widget("Dead-letter queue depth")["properties"]["metrics"]
    queues = {line[3] for line in metrics}

    expected = {f"${{{camel(family)}DeadLetterQueue.QueueName}}" for family in FAMILIES}
    assert queues == expected | {"${SweepDeadLetterQueue.QueueName}"}
    for queue in queues:  # each one a queue of the template
        assert resources()[queue[2:].split(".")[0]]["Type"] == "AWS::SQS::Queue"


def test_the_action_log_reads_every_functions_log_group() -> None:
    query = widget("Action log")["properties"]["query"]
    sources = set(re.findall(r"SOURCE '([^']+)'", query))

    names = {
        properties["LogGroupName"]["!Sub"]
        for resource in resources().values()
        if resource["Type"] == "AWS::Logs::LogGroup"
        for properties in [resource["Properties"]]
        if "/aws/lambda/" in str(properties["LogGroupName"])
    }
    assert sources == names
    assert "filter message = 'outcome'" in query


def test_the_dashboard_url_is_a_stack_output() -> None:
    url = template()["Outputs"]["DashboardUrl"]["Value"]["!Sub"]

    assert url.endswith("#dashboards/dashboard/${Dashboard}")
