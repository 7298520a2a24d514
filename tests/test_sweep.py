"""The scheduled sweep: drift that events missed is fixed, one summary, compliance metrics.

The sweep function runs in moto as in Lambda, with a stand-in for the Lambda context whose
remaining time drops as the sweep asks for it. Its self-invocation is the real request botocore
builds (InvocationType Event), answered below botocore like Lambda answers it (202), and its
payload is fed back to the handler as Lambda would deliver it.

moto names no region in ListBuckets (S3 does when a page size is asked), so every bucket here
also costs a GetBucketLocation (a listing per region names them only past as many buckets as
there are regions); the region-per-bucket and pagination tests check both paths.
"""

from __future__ import annotations

import json
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.s3.models import s3_backends

from bucketwarden import aws, notify
from bucketwarden.catalogue import CONTROL_IDS, CONTROLS
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings, mode_variable
from bucketwarden.sweep import (
    SweepSummary,
    Tally,
    controls_for,
    list_bucket_regions,
    list_buckets,
)
from bucketwarden.sweep_handler import SAFETY_MARGIN_MS, TimeBudget, sweep
from tests.conftest import ROOT
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    ErrorResponses,
    Inbox,
    audit_items,
    calls_delta,
    create_table,
    delete_bucket,
    emitted_metrics,
    is_public,
    make_bucket,
    s3,
    subscribe_inbox,
    sweeper,
)
from tests.test_controls_access_point import make_public, open_access_point
from tests.test_controls_event_notifications import notify_a_queue

AUDIT_TABLE = "bucketwarden-audit"
IDEMPOTENCY_TABLE = "bucketwarden-idempotency"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bucketwarden-sweep"
COMPLIANCE_METRICS = ("CompliantBuckets", "NoncompliantBuckets", "ExemptedBuckets")

pytestmark = pytest.mark.usefixtures("aws")


@dataclass
class FakeContext:
    """A Lambda context whose remaining time drops by `step_ms` each time it is asked."""

    remaining_ms: int = 900_000
    step_ms: int = 0
    invoked_function_arn: str = FUNCTION_ARN
    function_name: str = "bucketwarden-sweep"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        remaining = self.remaining_ms
        self.remaining_ms -= self.step_ms
        return remaining


class SelfInvocations:
    """Lambda's answer (202 Accepted) to the sweep's Invoke requests, which it keeps.

    Registered first on the engine's Lambda client, it stands in for Lambda below botocore, as
    tests.helpers.ErrorResponses does for S3 errors.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(
            {"url": request.url, "headers": dict(request.headers), "body": request.body}
        )
        request.url = "https://accepted.invalid/"  # moto serves no such host
        return AWSResponse(request.url, 202, {}, MockRawResponse(b""))

    def install(self) -> SelfInvocations:
        made = aws.client("lambda", REGION)
        made.meta.events.register_first("before-send.lambda.Invoke", self)
        return self

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(request["body"]) for request in self.requests]


class Judged(list[str]):
    """An outcome sink: the subjects one invocation judged, in the order it reported them."""

    def __call__(self, outcomes: list[Outcome]) -> None:
        self.extend(str(outcome.bucket) for outcome in outcomes)


def scheduled_event(event_id: str) -> dict[str, Any]:
    """What an EventBridge schedule delivers to its target."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2024-05-02T03:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/bucketwarden-sweep"],
        "detail": {},
    }


def name_regions_as_s3_does(parsed: dict[str, Any], **_: Any) -> None:
    """An `after-call` hook adding to moto's ListBuckets answer the `BucketRegion` that S3 puts
    in every page when a page size is asked (as the sweep does) and moto leaves out. Without it
    each bucket also costs a GetBucketLocation (tested on its own below)."""
    backend = s3_backends[ACCOUNT]["aws"]
    for bucket in parsed.get("Buckets", []):
        bucket["BucketRegion"] = backend.get_bucket(bucket["Name"]).region_name


def only_controls(monkeypatch: pytest.MonkeyPatch, *ids: str, mode: str = "remediate") -> None:
    for control_id in CONTROL_IDS:
        monkeypatch.setenv(mode_variable(control_id), mode if control_id in ids else "off")


def managed_by_people(bucket: str) -> None:
    """A lifecycle rule and an event notification on the bucket."""
    rule = {
        "ID": "expire",
        "Status": "Enabled",
        "Filter": {},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
    }
    s3().put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    notify_a_queue(bucket)


def verdicts(outcomes: list[Outcome]) -> dict[tuple[str, str], str]:
    return {(str(o.bucket), str(o.control)): o.status.value for o in outcomes}


def compliance_metrics(stdout: str) -> dict[str, dict[str, float]]:
    """Control → the compliance metrics the sweep emitted for it."""
    found: dict[str, dict[str, float]] = {}
    for name, control, value in emitted_metrics(stdout):
        if name in COMPLIANCE_METRICS:
            found.setdefault(control, {})[name] = value
    return found


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """The stack's audit and idempotency tables and its topic, with an SQS inbox on it."""
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    return subscribe_inbox(monkeypatch)


# ---------------------------------------------------------------- drift, summary, metrics


def test_sweep_fixes_drift_that_events_missed_and_sends_one_summary(
    stack: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("alpha", "bravo", "charlie", "delta"):
        make_bucket(name)
    point = open_access_point("echo")
    # What only people decide, and the controls that only report ask for: lifecycle rules and
    # event notifications (no sweep writes them).
    for listed in s3().list_buckets()["Buckets"]:
        managed_by_people(listed["Name"])
    # moto's new buckets lack every guard AWS now sets by default: a first sweep sets them.
    assert sweep(scheduled_event("baseline"), FakeContext())["status"] == "finished"
    stack.receive()
    audited = {item["audit_id"] for item in audit_items(AUDIT_TABLE)}
    # Then drift whose events never arrived, a different kind on each subject.
    s3().put_bucket_acl(Bucket="alpha", ACL="public-read")
    s3().put_bucket_versioning(Bucket="bravo", VersioningConfiguration={"Status": "Suspended"})
    s3().delete_public_access_block(Bucket="charlie")
    s3().delete_bucket_encryption(Bucket="charlie")
    make_public(point)
    capsys.readouterr()

    outcomes: list[Outcome] = []
    result = sweep(scheduled_event("daily"), FakeContext(), on_outcomes=outcomes.extend)

    drift = {
        ("alpha", "public-acl"),
        ("bravo", "versioning"),
        ("charlie", "bucket-public-access-block"),
        ("charlie", "default-encryption"),
        (point, "access-point"),
    }
    fixed = {pair for pair, status in verdicts(outcomes).items() if status == "remediated"}
    assert fixed == drift
    assert {status for pair, status in verdicts(outcomes).items() if pair not in drift} == {
        "compliant"
    }
    assert {o.found_by for o in outcomes} == {"sweep"}
    # Each control once on the account, on each bucket and on the access point.
    assert len(verdicts(outcomes)) == len(outcomes)
    assert not is_public("alpha")
    assert s3().get_bucket_versioning(Bucket="bravo")["Status"] == "Enabled"
    assert all(s3().get_public_access_block(Bucket="charlie")["PublicAccessBlockConfiguration"])
    assert s3().get_bucket_encryption(Bucket="charlie")["ServerSideEncryptionConfiguration"]

    new_records = [i for i in audit_items(AUDIT_TABLE) if i["audit_id"] not in audited]
    assert {(i["bucket"], i["control"]) for i in new_records} == drift
    assert {(i["found_by"], i["status"]) for i in new_records} == {("sweep", "remediated")}

    [envelope] = stack.receive()  # one summary, no message per finding
    assert envelope["Subject"] == "BucketWarden sweep: 5 findings on 4 buckets"
    assert envelope["MessageAttributes"]["kind"]["Value"] == "sweep-summary"
    summary = json.loads(envelope["Message"])
    assert summary == {k: result[k] for k in summary}
    assert (summary["findings"], summary["flagged"], summary["buckets"]) == (5, 4, 5)
    assert summary["by_control"]["default-encryption"] == {
        "remediated": 1,
        "noncompliant": 0,
        "exempted": 0,
        "failed": 0,
        "compliant": 4,
        "skipped": 0,
    }
    assert summary["worst"][0] == {"subject": "charlie", "findings": 2}

    metrics = compliance_metrics(capsys.readouterr().out)
    acting = tuple(c for c in CONTROLS if c.fixable)  # detect-only ones are off (conftest.py)
    assert set(metrics) == {c.id for c in acting}
    for control in acting:
        judged = {"bucket": 5, "account": 1, "access-point": 1}[control.scope]
        assert metrics[control.id] == {
            "CompliantBuckets": judged,
            "NoncompliantBuckets": 0,
            "ExemptedBuckets": 0,
        }, control.id

    # The next day: nothing drifted, nothing written, and the summary says so.
    before = API_CALLS.snapshot()
    again: list[Outcome] = []
    sweep(scheduled_event("next-day"), FakeContext(), on_outcomes=again.extend)
    assert set(verdicts(again).values()) == {"compliant"}
    writes = [
        c for c in calls_delta(before) if c.startswith("s3") and (".Put" in c or ".Delete" in c)
    ]
    assert writes == []
    [envelope] = stack.receive()
    assert envelope["Subject"] == "BucketWarden sweep: no findings on 5 buckets"
    assert len(audit_items(AUDIT_TABLE)) == len(audited) + len(drift)


def test_notify_mode_reports_drift_and_counts_noncompliant_buckets(
    stack: Inbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    only_controls(monkeypatch, "versioning", mode="notify")
    for name in ("kept-as-is", "also-kept", "versioned"):
        make_bucket(name)
    s3().put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    capsys.readouterr()
    before = API_CALLS.snapshot()

    outcomes: list[Outcome] = []
    sweep(scheduled_event("notify-only"), FakeContext(), on_outcomes=outcomes.extend)

    assert verdicts(outcomes) == {
        ("also-kept", "versioning"): "noncompliant",
        ("kept-as-is", "versioning"): "noncompliant",
        ("versioned", "versioning"): "compliant",
    }
    assert "s3.PutBucketVersioning" not in calls_delta(before)
    assert "Status" not in s3().get_bucket_versioning(Bucket="kept-as-is")
    assert {(i["bucket"], i["status"], i["found_by"]) for i in audit_items(AUDIT_TABLE)} == {
        ("also-kept", "noncompliant", "sweep"),
        ("kept-as-is", "noncompliant", "sweep"),
    }
    [envelope] = stack.receive()
    assert envelope["Subject"] == "BucketWarden sweep: 2 findings on 2 buckets"
    assert compliance_metrics(capsys.readouterr().out) == {
        "versioning": {"CompliantBuckets": 1, "NoncompliantBuckets": 2, "ExemptedBuckets": 0}
    }


# ---------------------------------------------------------------- time budget and continuation


def test_a_sweep_short_of_time_continues_and_judges_every_bucket_exactly_once(
    stack: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One cheap control keeps 2,000 buckets fast: the continuation is what is under test.
    only_controls(monkeypatch, "versioning", mode="notify")
    names = [f"fleet-{number:04d}" for number in range(2000)]
    unversioned = set(names[::250])
    backend = s3_backends[ACCOUNT]["aws"]
    for name in names:  # straight into moto's store: 2,000 CreateBucket calls would take 10 s
        backend.create_bucket(name, REGION)
        if name not in unversioned:
            backend.put_bucket_versioning(name, "Enabled")
    invocations = SelfInvocations().install()
    aws.client("s3").meta.events.register("after-call.s3.ListBuckets", name_regions_as_s3_does)

    calls_before = API_CALLS.snapshot()
    event: dict[str, Any] | None = scheduled_event("large-sweep")
    judged_by_invocation: list[Judged] = []
    results: list[dict[str, Any]] = []
    while event is not None:
        judged = Judged()
        # Each look at the clock costs 15 s of a 900 s budget: about 50 chunks of 16 buckets
        # per invocation, so three invocations.
        context = FakeContext(remaining_ms=900_000, step_ms=15_000)
        results.append(sweep(event, context, workers=4, on_outcomes=judged))
        judged_by_invocation.append(judged)
        sent = invocations.payloads()
        event = sent[-1] if len(sent) == len(results) else None

    assert len(results) >= 3
    every = [bucket for judged in judged_by_invocation for bucket in judged]
    assert sorted(every) == names  # each bucket in exactly one invocation
    # The listing named every region: no bucket cost a GetBucketLocation.
    assert "s3.GetBucketLocation" not in calls_delta(calls_before)
    for result, judged, payload in zip(
        results, judged_by_invocation, invocations.payloads(), strict=False
    ):
        assert result["status"] == "continued"
        assert payload["resume_after"] == judged[-1] == max(judged)
        assert payload["sweep_id"] == "large-sweep"
    assert [p["invocation"] for p in invocations.payloads()] == list(range(2, len(results) + 1))
    for request in invocations.requests:
        assert request["headers"]["X-Amz-Invocation-Type"] == b"Event"
        path = urlsplit(request["url"]).path
        assert path == f"/2015-03-31/functions/{quote(FUNCTION_ARN, safe='')}/invocations"

    final = results[-1]
    assert (final["status"], final["invocations"]) == ("finished", len(results))
    assert (final["buckets"], final["findings"]) == (2000, len(unversioned))
    assert {entry["subject"] for entry in final["worst"]} == unversioned
    [envelope] = stack.receive()
    assert envelope["Subject"] == "BucketWarden sweep: 8 findings on 8 buckets"


def test_a_duplicate_delivery_sweeps_nothing_twice(stack: Inbox) -> None:
    make_bucket("once-only")
    first: list[Outcome] = []
    second: list[Outcome] = []
    event = scheduled_event("delivered-twice")
    result = sweep(event, FakeContext(), on_outcomes=first.extend)
    assert sweep(event, FakeContext(), on_outcomes=second.extend) == result
    assert first
    assert not second
    assert len(stack.receive()) == 1


def test_an_invocation_whose_claim_was_not_released_is_run_by_lambdas_retry(
    stack: Inbox,
) -> None:
    """The listing fails and so does the release of the claim: the claim stays, named by the
    request id. Another delivery is a duplicate; Lambda's retry (the same request id) sweeps."""
    make_bucket("retried")
    event = scheduled_event("failed-once")
    listing = ErrorResponses(500, "InternalError", times=1000).install("ListBuckets", region=None)
    release = ErrorResponses(500, "InternalServerError", times=1000)
    release.install("UpdateItem", "dynamodb", None)
    with pytest.raises(Exception, match="idempotency store"):
        sweep(event, FakeContext())
    assert release.sent > 0
    aws.reset_clients()  # the outage is over

    other = sweep(event, replace(FakeContext(), aws_request_id="another-delivery"))
    retried = sweep(event, FakeContext())

    assert listing.sent > 0
    assert other["status"] == "duplicate"
    assert (retried["status"], retried["buckets"]) == ("finished", 1)
    assert len(stack.receive()) == 1


def whole_continuation() -> dict[str, Any]:
    """A continuation as Progress.handover writes it."""
    return {
        "sweep_id": "handed-over",
        "started_at": "2024-05-02T03:00:01.204+00:00",
        "invocation": 2,
        "resume_after": "aaa",
        "tally": {
            "by_control": {"versioning": {"compliant": 3, "remediated": 1}},
            "findings_by_bucket": {"aa-drifted": 1},
            "subjects": 4,
            "flagged": 1,
        },
    }


def test_a_whole_continuation_resumes_after_its_bucket_and_keeps_the_tally(stack: Inbox) -> None:
    make_bucket("aaa")  # done by the invocation that handed over
    make_bucket("bbb")
    judged = Judged()
    result = sweep(whole_continuation(), FakeContext(), on_outcomes=judged)
    assert set(judged) == {"bbb"}  # the account and access points are done at the start
    assert (result["status"], result["sweep_id"], result["invocations"]) == (
        "finished",
        "handed-over",
        2,
    )
    assert result["by_control"]["versioning"]["remediated"] == 2  # 1 carried, bbb fixed now
    assert len(stack.receive()) == 1


def continuation(**changes: Any) -> dict[str, Any]:
    return whole_continuation() | changes


def test_a_continuation_carries_the_buckets_warned_of_to_the_summary(stack: Inbox) -> None:
    make_bucket("bbb")
    carried = {**whole_continuation()["tally"], "warned_by_bucket": {"aa-warned": 1}}

    result = sweep(continuation(tally=carried), FakeContext())

    assert result["exemption_warnings"] == [{"bucket": "aa-warned", "checks": 1}]
    assert len(stack.receive()) == 1


NOT_AN_INTEGER = "invocation: Input should be a valid integer"
AT_LEAST = "Input should be greater than or equal to"
MALFORMED_CONTINUATIONS = {
    "sweep-id-only": (
        {"sweep_id": "x"},
        "started_at: Field required; invocation: Field required; "
        "resume_after: Field required; tally: Field required",
    ),
    "invocation-text": (continuation(invocation="two"), NOT_AN_INTEGER),
    "invocation-numeric-text": (continuation(invocation="2"), NOT_AN_INTEGER),
    "invocation-boolean": (continuation(invocation=True), NOT_AN_INTEGER),
    "invocation-zero": (continuation(invocation=0), f"invocation: {AT_LEAST} 1"),
    "started-at-not-a-time": (
        continuation(started_at="yesterday"),
        "started_at: Value error, must be an ISO 8601 date and time",
    ),
    "no-resume-point": (
        continuation(resume_after=None),
        "resume_after: Input should be a valid string",
    ),
    "empty-sweep-id": (
        continuation(sweep_id=""),
        "sweep_id: String should have at least 1 character",
    ),
    "tally-not-an-object": (
        continuation(tally=[1]),
        "tally: Input should be a valid dictionary or instance of CarriedTally",
    ),
    "tally-negative": (
        continuation(tally={**whole_continuation()["tally"], "subjects": -1}),
        f"tally.subjects: {AT_LEAST} 0",
    ),
    "tally-unknown-status": (
        continuation(
            tally={**whole_continuation()["tally"], "by_control": {"versioning": {"x": 1}}}
        ),
        "tally.by_control: Value error, versioning: unknown status 'x'",
    ),
    "unknown-field": (continuation(resume_from="a"), "resume_from: Extra inputs are not permitted"),
}


@pytest.mark.parametrize(
    ("event", "reason"), MALFORMED_CONTINUATIONS.values(), ids=list(MALFORMED_CONTINUATIONS)
)
def test_a_malformed_continuation_is_refused_with_the_reason_and_sweeps_nothing(
    stack: Inbox,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    event: dict[str, Any],
    reason: str,
) -> None:
    make_bucket("unversioned")
    invocations = SelfInvocations().install()
    capsys.readouterr()
    calls_before = API_CALLS.snapshot()
    judged = Judged()

    result = sweep(event, FakeContext(), on_outcomes=judged)

    assert result == {
        "status": "refused",
        "sweep_id": event["sweep_id"],
        "reason": f"malformed sweep continuation ({reason})",
    }
    assert not judged
    assert not calls_delta(calls_before)  # no listing, no claim, no fix
    assert not invocations.requests
    assert not stack.receive()
    assert not audit_items(AUDIT_TABLE)
    assert boto3.client("dynamodb", REGION).scan(TableName=IDEMPOTENCY_TABLE)["Count"] == 0
    out = capsys.readouterr().out
    assert ("InvalidEvents", "none", 1.0) in emitted_metrics(out)
    [logged] = [r for r in caplog.records if r.getMessage().startswith("sweep continuation")]
    assert logged.getMessage() == "sweep continuation refused, nothing swept"
    assert (logged.levelname, logged.reason) == ("ERROR", result["reason"])  # type: ignore[attr-defined]


def test_continuation_fields_without_a_sweep_id_are_refused_not_a_new_sweep(
    stack: Inbox,
) -> None:
    make_bucket("unversioned")
    result = sweep({"resume_after": "aaa", "invocation": 3}, FakeContext())
    assert result["status"] == "refused"
    assert result["sweep_id"] is None
    assert result["reason"].startswith("malformed sweep continuation (sweep_id: Field required;")
    assert not stack.receive()


@pytest.mark.parametrize("event", [{}, None, [], "start"], ids=["empty", "null", "list", "text"])
def test_an_event_that_is_no_continuation_starts_a_new_sweep(stack: Inbox, event: Any) -> None:
    make_bucket("started-by-hand")
    result = sweep(event, FakeContext())
    assert (result["status"], result["invocations"], result["buckets"]) == ("finished", 1, 1)
    assert result["sweep_id"]
    assert len(stack.receive()) == 1


def test_time_budget_keeps_a_margin_for_one_more_chunk_and_the_summary() -> None:
    assert TimeBudget.of(FakeContext(remaining_ms=900_000)).margin_ms == SAFETY_MARGIN_MS
    # A short timeout keeps a quarter of it instead of two minutes it does not have.
    assert TimeBudget.of(FakeContext(remaining_ms=60_000)).margin_ms == 15_000
    budget = TimeBudget.of(FakeContext(remaining_ms=900_000, step_ms=400_000))
    assert [budget.out_of_time(), budget.out_of_time()] == [False, True]
    assert TimeBudget.of(None).out_of_time() is False  # the CLI has no deadline


# ---------------------------------------------------------------- buckets, regions, listing


def test_each_bucket_is_read_with_a_client_of_its_own_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only_controls(monkeypatch, "versioning")
    make_bucket("home-bucket")
    s3().create_bucket(
        Bucket="far-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    read_by: dict[str, list[str]] = {}
    for region in (REGION, "eu-west-1"):
        aws.client("s3", region).meta.events.register(
            "before-parameter-build.s3.GetBucketVersioning",
            lambda params, region=region, **_: read_by.setdefault(region, []).append(
                params["Bucket"]
            ),
        )

    outcomes: list[Outcome] = []
    sweep(scheduled_event("two-regions"), FakeContext(), on_outcomes=outcomes.extend)

    assert {o.bucket: (o.region, o.status.value) for o in outcomes} == {
        "home-bucket": (REGION, "remediated"),
        "far-bucket": ("eu-west-1", "remediated"),
    }
    # Read, then read again after the fix: each time with its own region's client.
    assert read_by == {REGION: ["home-bucket"] * 2, "eu-west-1": ["far-bucket"] * 2}


def test_workers_that_need_the_same_new_client_at_once_build_it_once() -> None:
    """The first buckets of a sweep reach every worker at once, each needing the location
    client and then its region's: one of each is built (a build loads the service model again,
    tens of milliseconds of CPU), not one per worker."""
    names = [make_bucket(f"first-wave-{index:02d}") for index in range(32)]
    aws.reset_clients()  # also resets the cache's counts of hits and misses

    outcomes: list[Outcome] = []
    sweeper(Settings(dry_run=True), controls_for(["versioning"]), workers=16).run(
        names, on_outcomes=outcomes.extend
    )

    assert len(outcomes) == len(names)
    built = aws._cached_client.cache_info()
    assert built.misses == built.currsize == 2  # `client("s3")` for locations, and us-east-1's


def test_the_next_chunk_starts_while_the_last_buckets_of_a_chunk_finish() -> None:
    """Two workers, chunks of four: the chunk's last bucket is still being read when the next
    chunk's first one starts, so no worker waits for the slowest bucket of a chunk."""
    names = [make_bucket(f"pipelined-{index}") for index in range(8)]
    next_chunk_started = threading.Event()
    last_of_first_chunk_saw_it: list[bool] = []

    def on_read(params: dict[str, Any], **_: Any) -> None:
        if params["Bucket"] == "pipelined-4":
            next_chunk_started.set()
        if params["Bucket"] == "pipelined-3":
            last_of_first_chunk_saw_it.append(next_chunk_started.wait(timeout=10))

    aws.client("s3", REGION).meta.events.register(
        "before-parameter-build.s3.GetBucketVersioning", on_read
    )
    outcomes: list[Outcome] = []
    sweeping = sweeper(Settings(dry_run=True), controls_for(["versioning"]), workers=2, chunk=4)
    result = sweeping.run(names, on_outcomes=outcomes.extend, regions=dict.fromkeys(names, REGION))

    assert last_of_first_chunk_saw_it == [True]
    assert [o.bucket for o in outcomes] == names  # reported in name order all the same
    assert result.resume_after is None


@pytest.mark.parametrize("listed_region", [None, REGION], ids=["region-unknown", "region-listed"])
def test_a_bucket_deleted_after_the_listing_is_skipped(
    monkeypatch: pytest.MonkeyPatch, listed_region: str | None
) -> None:
    only_controls(monkeypatch, "versioning", "bucket-public-access-block")
    make_bucket("kept")
    make_bucket("short-lived")
    listed = list_buckets(aws.client("s3"))
    delete_bucket("short-lived")

    outcomes: list[Outcome] = []
    settings = Settings.from_env(CONTROL_IDS)
    regions = dict.fromkeys(listed, listed_region)
    result = sweeper(settings).run(listed, regions=regions, on_outcomes=outcomes.extend)

    assert verdicts(outcomes) == {
        ("kept", "bucket-public-access-block"): "remediated",
        ("kept", "versioning"): "remediated",
        ("short-lived", "bucket-public-access-block"): "skipped",
        ("short-lived", "versioning"): "skipped",
    }
    gone = [o.reason for o in outcomes if o.bucket == "short-lived"]
    assert gone == ["bucket no longer exists"] * 2
    assert result.tally.findings == 2


class ListBucketsPages:
    """S3's answers to a paginated ListBuckets: buckets with their regions, a token per page."""

    def __init__(self, pages: list[tuple[dict[str, str], str | None]]) -> None:
        self.pages = pages
        self.queries: list[dict[str, list[str]]] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        buckets, token = self.pages[len(self.queries)]
        self.queries.append(parse_qs(urlsplit(request.url).query))
        entries = "".join(
            f"<Bucket><Name>{name}</Name><CreationDate>2024-05-01T00:00:00.000Z</CreationDate>"
            f"<BucketRegion>{region}</BucketRegion></Bucket>"
            for name, region in buckets.items()
        )
        more = f"<ContinuationToken>{token}</ContinuationToken>" if token else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Owner><ID>{'a' * 64}</ID></Owner><Buckets>{entries}</Buckets>{more}"
            "</ListAllMyBucketsResult>"
        ).encode()
        request.url = "https://answered.invalid/"  # moto serves no such host
        return AWSResponse(request.url, 200, {}, MockRawResponse(body))


def test_listing_asks_for_pages_follows_tokens_and_keeps_the_regions() -> None:
    pages = ListBucketsPages(
        [
            ({"zulu": "eu-west-1", "alpha": REGION}, "page-2"),
            ({"mike": "ap-southeast-2"}, None),
        ]
    )
    s3_client = aws.client("s3")
    s3_client.meta.events.register_first("before-send.s3.ListBuckets", pages)

    assert list_bucket_regions(s3_client) == {
        "alpha": REGION,
        "mike": "ap-southeast-2",
        "zulu": "eu-west-1",
    }
    # A page size makes S3 name the regions (and is what accounts past 10,000 buckets need).
    assert [query.get("max-buckets") for query in pages.queries] == [["10000"], ["10000"]]
    assert [query.get("continuation-token") for query in pages.queries] == [None, ["page-2"]]


def test_listing_in_moto_without_a_token_still_lists_every_bucket() -> None:
    for name in ("charlie", "alpha", "bravo"):
        make_bucket(name)
    # moto names no region and sends no token: one page. Fewer buckets than regions: their
    # regions are left to a GetBucketLocation each.
    assert list_bucket_regions(aws.client("s3")) == dict.fromkeys(["alpha", "bravo", "charlie"])


def many_buckets_in_two_regions() -> list[str]:
    """More buckets than the partition has regions, one of them in eu-west-1."""
    aws.client("s3", "eu-west-1").create_bucket(
        Bucket="west", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return sorted([make_bucket(f"east-{index:02d}") for index in range(40)] + ["west"])


def test_more_unnamed_buckets_than_regions_are_named_by_a_listing_per_region() -> None:
    names = many_buckets_in_two_regions()
    calls_before = API_CALLS.snapshot()

    regions = list_bucket_regions(aws.client("s3"))

    assert regions == {name: "eu-west-1" if name == "west" else REGION for name in names}
    # The listing, then one per region of the partition: no GetBucketLocation for 41 buckets
    # (and the region's directory buckets, listed once).
    partition = boto3.session.Session().get_available_regions("s3")
    expected = {"s3.ListBuckets": 1 + len(partition), "s3.ListDirectoryBuckets": 1}
    assert calls_delta(calls_before) == expected


def test_an_endpoint_that_ignores_the_region_filter_names_no_region() -> None:
    names = many_buckets_in_two_regions()
    s3_client = aws.client("s3")
    s3_client.meta.events.register(
        "before-parameter-build.s3.ListBuckets",
        lambda params, **_: params.pop("BucketRegion", None),
    )

    # Every bucket came back for every region: none is trusted, GetBucketLocation decides.
    assert list_bucket_regions(s3_client) == dict.fromkeys(names)


# ---------------------------------------------------------------- failures


def test_a_surface_that_keeps_failing_fails_its_controls_not_the_sweep(
    stack: Inbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    only_controls(monkeypatch, "versioning", "default-encryption")
    make_bucket("unlucky")
    # An error botocore does not retry keeps the test fast; throttling past the retries is
    # the same ClientError after a few seconds.
    ErrorResponses(400, "InvalidRequest", times=1000).install("GetBucketVersioning")
    capsys.readouterr()

    outcomes: list[Outcome] = []
    result = sweep(scheduled_event("bad-day"), FakeContext(), on_outcomes=outcomes.extend)

    assert result["status"] == "finished"
    assert verdicts(outcomes) == {
        ("unlucky", "default-encryption"): "remediated",
        ("unlucky", "versioning"): "failed",
    }
    (failed,) = [o for o in outcomes if o.status is Status.FAILED]
    assert failed.reason == (
        "not checked: InvalidRequest on GetBucketVersioning after retries; "
        "the next sweep tries again"
    )
    failures = [i for i in audit_items(AUDIT_TABLE) if i["status"] == "failed"]
    assert [(i["control"], i["found_by"]) for i in failures] == [("versioning", "sweep")]
    assert ("RemediationFailures", "versioning", 1.0) in emitted_metrics(capsys.readouterr().out)
    [envelope] = stack.receive()
    assert envelope["Subject"] == "BucketWarden sweep: 2 findings on 1 bucket"


# ---------------------------------------------------------------- the summary and the function


def summary_of(outcomes: list[Outcome]) -> SweepSummary:
    tally = Tally()
    tally.subjects = len({o.bucket for o in outcomes})
    tally.add(outcomes)
    return SweepSummary(
        sweep_id="sweep-1",
        started_at="2024-05-02T03:00:00+00:00",
        finished_at="2024-05-02T03:04:00+00:00",
        invocations=1,
        controls=("public-acl", "versioning"),
        tally=tally,
    )


def test_summary_reads_well_in_email_and_chat() -> None:
    def outcome(bucket: str, control: str, status: Status) -> Outcome:
        return Outcome(bucket=bucket, control=control, status=status, reason="r")

    summary = summary_of(
        [
            outcome("web-assets", "public-acl", Status.REMEDIATED),
            outcome("web-assets", "versioning", Status.FAILED),
            outcome("archive", "public-acl", Status.COMPLIANT),
            outcome("archive", "versioning", Status.NONCOMPLIANT),
        ]
    )
    message = notify.summary_message(summary, Settings())

    email = message["email"]
    assert email.startswith("BucketWarden sweep: 3 findings on 2 buckets.\n")
    assert (
        "control      remediated noncompliant     exempted       failed    compliant      skipped\n"
        "public-acl            1            0            0            0            1            0\n"
        "versioning            0            1            0            1            0            0\n"
    ) in email
    assert "    2  web-assets\n    1  archive" in email
    assert "bucketwarden:exempt = <control id>" in email

    chat = json.loads(message["https"])
    assert chat["content"]["title"] == ":warning: BucketWarden sweep: 3 findings on 2 buckets"
    assert "• `versioning`: 1 noncompliant, 1 failed" in chat["content"]["description"]
    assert chat["metadata"]["relatedResources"] == [
        "arn:aws:s3:::web-assets",
        "arn:aws:s3:::archive",
    ]
    machine = json.loads(message["sqs"])
    assert machine["kind"] == "sweep-summary"
    assert machine["worst"] == [
        {"subject": "web-assets", "findings": 2},
        {"subject": "archive", "findings": 1},
    ]
    assert message["default"] == message["sqs"] == message["lambda"] == message["email-json"]


def test_the_carried_tally_keeps_only_the_worst_subjects_and_every_total() -> None:
    tally = Tally()
    tally.add(
        Outcome(bucket=f"b{n:02d}", control="versioning", status=Status.REMEDIATED, reason="r")
        for n in range(30)
    )
    tally.add([Outcome(bucket="b07", control="public-acl", status=Status.FAILED, reason="r")])
    carried = Tally.from_dict(json.loads(json.dumps(tally.to_dict(worst=10))))
    assert len(carried.findings_by_bucket) == 10
    assert carried.worst(1) == [("b07", 2)]
    assert (carried.flagged, carried.findings) == (30, 31)


def test_the_summary_names_compliant_buckets_whose_exemption_would_not_be_honoured(
    stack: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_controls(monkeypatch, "versioning")
    for name in ("no-reason", "expired", "honoured", "untagged"):
        make_bucket(name)
        s3().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    exempt = {"Key": "bucketwarden:exempt", "Value": "versioning"}
    reason = {"Key": "bucketwarden:exempt-reason", "Value": "archive"}
    tag_sets = {
        "no-reason": [exempt],
        "expired": [exempt, reason, {"Key": "bucketwarden:exempt-until", "Value": "2020-01-31"}],
        "honoured": [exempt, reason],
    }
    for name, tags in tag_sets.items():
        s3().put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})

    result = sweep(scheduled_event("warned"), FakeContext())

    [envelope] = stack.receive()
    assert envelope["Subject"] == "BucketWarden sweep: no findings on 4 buckets"
    summary = json.loads(envelope["Message"])
    assert summary["exemption_warnings"] == result["exemption_warnings"]
    assert sorted(w["bucket"] for w in summary["exemption_warnings"]) == ["expired", "no-reason"]


def warned_compliant(bucket: str) -> Outcome:
    """A compliant check of a bucket whose exemption has expired."""
    warning = "exemption expired on 2020-01-31"
    return Outcome(
        bucket=bucket, control="versioning", status=Status.COMPLIANT, reason="r", warnings=[warning]
    )


def test_the_summary_names_them_in_email_and_chat() -> None:
    summary = summary_of([warned_compliant("archive")])
    message = notify.summary_message(summary, Settings())

    email = message["email"]
    assert "would not be honoured (no reason, expired), on compliant buckets; checks per " in email
    assert "    1  archive\nSee each with: bucketwarden scan --bucket NAME" in email
    description = json.loads(message["https"])["content"]["description"]
    assert "on compliant buckets:* `archive` (1)" in description


def test_the_carried_tally_keeps_the_buckets_warned_of() -> None:
    tally = Tally()
    tally.add(
        [
            Outcome(bucket="kept", control="versioning", status=Status.COMPLIANT, reason="r"),
            warned_compliant("warned"),
        ]
    )
    carried = Tally.from_dict(json.loads(json.dumps(tally.to_dict(worst=10))))
    assert carried.warned() == [("warned", 1)]


def test_the_lambda_entry_point_sweeps_with_the_lambda_context(
    stack: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_controls(monkeypatch, "versioning")
    make_bucket("through-lambda")
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = runpy.run_path(
        str(ROOT / "functions" / "sweep" / "app.py")
    )["lambda_handler"]

    result = handler(scheduled_event("from-the-schedule"), FakeContext())

    assert (result["status"], result["sweep_id"], result["findings"]) == (
        "finished",
        "from-the-schedule",
        1,
    )
    assert len(stack.receive()) == 1
