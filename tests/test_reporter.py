"""The reporters: what each caller of the engine records of its outcomes.

The event path audits, notifies and counts each outcome; the sweep audits and counts, and
notifies one summary; a dry run records nothing; the local mode's metrics reach its sink.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bucketwarden import services
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.engine import Engine
from bucketwarden.events import parse_record
from bucketwarden.handler import lambda_handler_for
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import Status
from bucketwarden.reporter import DryRunReporter, EventReporter, SweepReporter
from bucketwarden.settings import Settings
from bucketwarden.summary import SweepSummary, Tally
from bucketwarden.sweep import Sweep
from bucketwarden_tools.delivery import LambdaContextStub
from tests.helpers import (
    Inbox,
    audit_items,
    cloudtrail_record,
    create_table,
    eventbridge_event,
    is_public,
    public_bucket,
    subscribe_inbox,
)

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """An audit table and a topic, as the stack has them."""
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    return subscribe_inbox(monkeypatch)


def acl_record(bucket: str) -> Any:
    return parse_record(eventbridge_event(cloudtrail_record("PutBucketAcl", bucket)))


def metric_names(sets: list[dict[str, Any]]) -> list[str]:
    return [
        metric["Name"]
        for found in sets
        for directive in found["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]


def engine_with(kind: str, settings: Settings, sink: list[dict[str, Any]]) -> Engine:
    metrics = Metrics(sink.append)
    store = services.audit_store(settings, metrics)
    notifier = services.notifier(settings)
    reporter = {
        "event": EventReporter(store, notifier, metrics),
        "dry-run": DryRunReporter(),
    }[kind]
    return Engine("public-access", settings, reporter, store)


def test_the_event_reporter_audits_notifies_and_counts_each_outcome(recorded: Inbox) -> None:
    bucket = public_bucket()
    sink: list[dict[str, Any]] = []

    outcomes = engine_with("event", Settings.from_env(CONTROL_IDS), sink).handle_record(
        acl_record(bucket)
    )

    assert [o.status for o in outcomes] == [Status.REMEDIATED]
    assert [item["status"] for item in audit_items(AUDIT_TABLE)] == ["remediated"]
    assert len(recorded.receive()) == 1
    assert "Remediations" in metric_names(sink)


def test_the_dry_run_reporter_records_nothing(
    recorded: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = public_bucket()
    sink: list[dict[str, Any]] = []
    settings = replace(Settings.from_env(CONTROL_IDS), dry_run=True)
    capsys.readouterr()

    outcomes = engine_with("dry-run", settings, sink).handle_record(acl_record(bucket))

    assert [o.status for o in outcomes if o.control == "public-acl"] == [Status.NONCOMPLIANT]
    assert is_public(bucket)
    assert audit_items(AUDIT_TABLE) == []
    assert recorded.receive() == []
    assert sink == []
    assert '"_aws"' not in capsys.readouterr().out  # no metric printed either


def test_the_dry_run_reporter_counts_no_loop_or_invalid_event() -> None:
    sink: list[dict[str, Any]] = []
    engine = engine_with("dry-run", Settings(dry_run=True), sink)

    engine.handle_event("{not json")

    assert sink == []


def test_the_production_reporter_of_a_dry_run_is_the_one_that_records_nothing() -> None:
    settings = Settings(dry_run=True)
    store = services.audit_store(settings, Metrics())

    assert isinstance(services.reporter(settings, store, Metrics()), DryRunReporter)
    assert type(services.reporter(Settings(), store, Metrics())) is EventReporter
    assert type(services.reporter(Settings(), store, Metrics(), sweep=True)) is SweepReporter


def test_the_sweep_reporter_audits_each_finding_and_notifies_only_the_summary(
    recorded: Inbox,
) -> None:
    bucket = public_bucket()
    settings = Settings.from_env(CONTROL_IDS)
    sink: list[dict[str, Any]] = []
    metrics = Metrics(sink.append)
    store = services.audit_store(settings, metrics)
    reporter = SweepReporter(store, services.notifier(settings), metrics)
    result = Sweep(settings, reporter=reporter, store=store).run([bucket])

    assert "remediated" in {item["status"] for item in audit_items(AUDIT_TABLE)}
    assert recorded.receive() == []  # no notification per finding
    assert "Remediations" in metric_names(sink)
    summary = SweepSummary("s-1", "t0", "t1", 1, ("public-acl",), result.tally)
    sink.clear()
    reporter.summarize(summary)
    (envelope,) = recorded.receive()
    assert envelope["Subject"].startswith("BucketWarden sweep:")
    assert set(metric_names(sink)) == {"CompliantBuckets", "NoncompliantBuckets", "ExemptedBuckets"}


def test_the_dry_run_reporter_sends_no_summary(recorded: Inbox) -> None:
    DryRunReporter().summarize(SweepSummary("s-1", "t0", "t1", 1, ("public-acl",), Tally()))

    assert recorded.receive() == []


def test_a_function_given_a_metrics_sink_sends_its_metric_sets_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The local mode's way: the function's own entry point, its metrics sent to a sink."""
    bucket = public_bucket()
    received: list[dict[str, Any]] = []
    handler = lambda_handler_for("public-access").with_metrics(Metrics(received.append))
    capsys.readouterr()

    event = eventbridge_event(cloudtrail_record("PutBucketAcl", bucket))
    outcomes = handler(event, LambdaContextStub(function_name="bucketwarden-public-access"))

    assert "remediated" in {o["status"] for o in outcomes}
    fixed = [found for found in received if found.get("Control") == "public-acl"]
    assert "Remediations" in metric_names(fixed)
    assert '"_aws"' not in capsys.readouterr().out  # none printed besides


def test_without_a_sink_metric_sets_are_printed_as_emf(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    Metrics().emit("LoopSuppressed", "public-acl")

    assert '"LoopSuppressed"' in capsys.readouterr().out
