"""The engine's rules: what it ignores; what it audits, notifies and counts; dry runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bucketwarden import engine as engine_module
from bucketwarden.catalogue import FAMILIES, controls_of
from bucketwarden.handler import process
from tests.helpers import (
    ACTOR,
    ALL_USERS,
    API_CALLS,
    EVENT_TIME,
    SERVICE_FUNCTION,
    SERVICE_ROLE,
    SOURCE_IP,
    audit_items,
    calls_delta,
    cloudtrail_record,
    create_table,
    emitted_metrics,
    handle,
    is_public,
    make_bucket,
    metric_names,
    only,
    public_bucket,
    s3,
    subscribe_inbox,
    tag_bucket,
)

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"


# -- what is ignored ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchBucket", "MalformedACLError"])
def test_failed_call_is_ignored_without_touching_s3(code: str) -> None:
    bucket = public_bucket()
    before = API_CALLS.snapshot()

    outcome = only(handle("PutBucketAcl", bucket, "public-access", error_code=code))

    assert outcome["status"] == "ignored"
    assert outcome["reason"] == f"the call failed ({code}), nothing changed"
    assert outcome["event_id"] is not None
    assert calls_delta(before) == {}
    assert is_public(bucket)


def test_own_change_is_ignored_and_counted_as_loop_suppressed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other_role = "arn:aws:iam::123456789012:role/bucketwarden-encryption"
    monkeypatch.setenv("SERVICE_ROLE_ARNS", f"{other_role}, {SERVICE_ROLE}")
    monkeypatch.setenv("SERVICE_FUNCTION_NAMES", f"bucketwarden-encryption,{SERVICE_FUNCTION}")
    bucket = public_bucket()
    before = API_CALLS.snapshot()

    outcome = only(
        handle(
            "PutBucketAcl",
            bucket,
            "public-access",
            issuer_arn=SERVICE_ROLE,
            session_name=SERVICE_FUNCTION,
        )
    )

    assert outcome["status"] == "ignored"
    assert outcome["reason"] == "change made by BucketWarden itself"
    assert calls_delta(before) == {}
    assert metric_names(capsys.readouterr().out, "public-acl") == ["LoopSuppressed"]


@pytest.mark.parametrize(
    ("issuer_arn", "session_name"),
    [
        # The service's role passed to a function of someone else's (iam:PassRole): Lambda
        # names the session after that function.
        (SERVICE_ROLE, "mallorys-function"),
        # A session named after a service function, of a role that is not the service's.
        ("arn:aws:iam::123456789012:role/deploy-pipeline", SERVICE_FUNCTION),
    ],
    ids=["service-role-other-function", "other-role-service-function-name"],
)
def test_only_a_service_functions_session_of_a_service_role_is_own(
    monkeypatch: pytest.MonkeyPatch, issuer_arn: str, session_name: str
) -> None:
    monkeypatch.setenv("SERVICE_ROLE_ARNS", SERVICE_ROLE)
    monkeypatch.setenv("SERVICE_FUNCTION_NAMES", SERVICE_FUNCTION)
    bucket = public_bucket()

    outcome = only(
        handle(
            "PutBucketAcl",
            bucket,
            "public-access",
            issuer_arn=issuer_arn,
            session_name=session_name,
        )
    )

    assert outcome["status"] == "remediated"
    assert not is_public(bucket)


def test_a_user_named_as_a_service_role_is_not_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only assumed-role sessions are the service's: an identity ARN alone proves nothing.
    monkeypatch.setenv("SERVICE_ROLE_ARNS", ACTOR)
    monkeypatch.setenv("SERVICE_FUNCTION_NAMES", ACTOR.rsplit("/", 1)[-1])
    bucket = public_bucket()
    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "remediated"


def test_another_roles_change_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_ROLE_ARNS", SERVICE_ROLE)
    bucket = public_bucket()
    other = "arn:aws:iam::123456789012:role/deploy-pipeline"
    assert only(handle("PutBucketAcl", bucket, "public-access", issuer_arn=other))["status"] == (
        "remediated"
    )
    assert not is_public(bucket)


@pytest.mark.parametrize(
    ("event_name", "family"),
    [
        ("PutBucketAcl", "encryption"),
        ("PutBucketVersioning", "public-access"),
        ("PutBucketTagging", "encryption"),
        ("DeleteBucketEncryption", "versioning"),
    ],
)
def test_event_of_another_family_is_ignored(event_name: str, family: str) -> None:
    bucket = public_bucket()
    before = API_CALLS.snapshot()

    outcome = only(handle(event_name, bucket, family))

    assert outcome["status"] == "ignored"
    assert outcome["reason"] == f"{event_name} is not handled by the {family} family"
    assert calls_delta(before) == {}


def test_create_bucket_runs_every_control_of_the_family_in_catalogue_order() -> None:
    bucket = public_bucket()
    expected = {
        family: [c.id for c in controls_of(family) if "CreateBucket" in c.trigger_events]
        for family in FAMILIES
    }
    families = {
        family: [o["control"] for o in handle("CreateBucket", bucket, family)]
        for family, controls in expected.items()
        if controls
    }
    assert families == {family: controls for family, controls in expected.items() if controls}
    # The safe order: Block Public Access and ownership before any bucket policy edit.
    public_access = families["public-access"]
    first_policy_edit = min(
        public_access.index(c) for c in ("public-policy", "secure-transport") if c in public_access
    )
    assert public_access.index("bucket-public-access-block") < first_policy_edit
    assert public_access.index("object-ownership") < first_policy_edit


def test_baseline_delay_waits_once_before_create_bucket_is_judged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(engine_module.time, "sleep", waits.append)
    monkeypatch.setenv("BASELINE_DELAY_SECONDS", "45")
    bucket = make_bucket("new-bucket")

    handle("CreateBucket", bucket, "versioning")
    handle("PutBucketVersioning", bucket, "versioning")

    assert waits == [45]  # CreateBucket only, once for the event


def test_no_delay_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(engine_module.time, "sleep", waits.append)
    handle("CreateBucket", make_bucket("new-bucket"), "versioning")
    assert waits == []


def test_website_bucket_finding_warns_and_says_how_to_keep_it_public() -> None:
    bucket = public_bucket("www-example")
    s3().put_bucket_website(
        Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
    )
    before = API_CALLS.snapshot()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "remediated"  # fixed unless exempted
    [warning] = outcome["warnings"]
    assert "static website (index document index.html)" in warning
    assert "bucketwarden:exempt=public-acl" in warning
    assert calls_delta(before)["s3.GetBucketWebsite"] == 1


def test_website_is_not_read_for_a_compliant_bucket() -> None:
    bucket = make_bucket("private-bucket")
    before = API_CALLS.snapshot()
    outcome = only(handle("PutBucketAcl", bucket, "public-access"))
    assert outcome["status"] == "compliant"
    assert "s3.GetBucketWebsite" not in calls_delta(before)


def test_invalid_event_is_rejected_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = only(process({"detail-type": "x", "detail": {"eventID": "abc"}}, "versioning"))
    assert outcome["status"] == "ignored"
    assert outcome["reason"].startswith("rejected: not a CloudTrail record")
    assert outcome["event_id"] == "abc"
    assert metric_names(capsys.readouterr().out, "none") == ["InvalidEvents"]


# -- audit -------------------------------------------------------------------------------------


def test_remediation_is_audited_with_before_after_and_who(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    bucket = public_bucket()

    outcome = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-audit-1"))

    [item] = audit_items(AUDIT_TABLE)
    assert item["audit_id"] == outcome["audit_id"]
    assert item["status"] == "remediated"
    assert item["bucket"] == bucket
    assert item["control"] == "public-acl"
    assert item["actor"] == ACTOR
    assert item["source_ip"] == SOURCE_IP
    assert item["event_id"] == "evt-audit-1"
    assert item["event_name"] == "PutBucketAcl"
    assert item["event_time"] == EVENT_TIME
    assert datetime.fromisoformat(item["fix_time"]) <= datetime.now(UTC)
    assert item["before"] == outcome["before"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in item["before"]["Grants"])
    # The audit's "after" is the state read back from S3 after the fix.
    assert item["after"]["Grants"] == s3().get_bucket_acl(Bucket=bucket)["Grants"]


def test_compliant_outcome_writes_no_audit_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    bucket = make_bucket("private-bucket")
    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "compliant"
    assert audit_items(AUDIT_TABLE) == []


def test_exempted_drift_is_recorded_per_event_and_notified_once_a_day(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    tags = {"bucketwarden:exempt": "all", "bucketwarden:exempt-reason": "website"}
    tag_bucket(bucket, {**tags, "bucketwarden:exempt-until": until})
    capsys.readouterr()

    first = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-1"))
    second = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-2"))

    assert (first["status"], second["status"]) == ("exempted", "exempted")
    assert (first["notified"], second["notified"]) == (True, False)
    assert first["audit_id"] != second["audit_id"]
    assert len(audit_items(AUDIT_TABLE)) == 2
    assert len(inbox.receive()) == 1
    names = metric_names(capsys.readouterr().out, "public-acl")
    assert names == ["Findings", "Exemptions", "Findings", "Exemptions"]
    assert is_public(bucket)


# -- metrics -----------------------------------------------------------------------------------


def test_remediation_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    bucket = public_bucket()
    capsys.readouterr()
    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    metrics = {name: value for name, control, value in emitted_metrics(capsys.readouterr().out)}
    assert set(metrics) == {"Findings", "Remediations", "TimeToRemediate"}
    assert metrics["Findings"] == metrics["Remediations"] == 1
    # Milliseconds from the CloudTrail eventTime to the verified fix.
    assert metrics["TimeToRemediate"] == outcome["time_to_remediate_ms"]
    fix = datetime.fromisoformat(outcome["fix_time"])
    start = datetime.fromisoformat(EVENT_TIME.replace("Z", "+00:00"))
    assert abs(metrics["TimeToRemediate"] - (fix - start).total_seconds() * 1000) < 1000


def test_notify_mode_counts_a_finding_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODE_PUBLIC_ACL", "notify")
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    capsys.readouterr()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "noncompliant"
    assert metric_names(capsys.readouterr().out, "public-acl") == ["Findings"]
    [envelope] = inbox.receive()
    assert envelope["Subject"] == f"BucketWarden found public-acl drift on bucket {bucket}"


def test_compliant_outcome_is_not_counted_or_notified(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("private-bucket")
    capsys.readouterr()
    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "compliant"
    assert emitted_metrics(capsys.readouterr().out) == []
    assert inbox.receive() == []


# -- dry run -----------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_reports_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUCKETWARDEN_DRY_RUN", "true")
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    before_acl = s3().get_bucket_acl(Bucket=bucket)["Grants"]
    capsys.readouterr()
    before = API_CALLS.snapshot()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "noncompliant"
    # The outcome shows what the fix would put.
    assert outcome["before"]["Grants"] == before_acl
    assert [g for g in outcome["after"]["Grants"] if g["Grantee"].get("URI") == ALL_USERS] == []
    assert s3().get_bucket_acl(Bucket=bucket)["Grants"] == before_acl
    assert "s3.PutBucketAcl" not in calls_delta(before)
    assert audit_items(AUDIT_TABLE) == []
    assert inbox.receive() == []
    assert emitted_metrics(capsys.readouterr().out) == []


def test_outcome_carries_the_event_context() -> None:
    bucket = public_bucket()
    record: dict[str, Any] = cloudtrail_record("PutBucketAcl", bucket, event_id="ctx-1")
    outcome = only(process(record, "public-access"))
    assert outcome["event_id"] == "ctx-1"
    assert outcome["event_name"] == "PutBucketAcl"
    assert outcome["event_time"] == EVENT_TIME
    assert outcome["actor"] == ACTOR
    assert outcome["source_ip"] == SOURCE_IP
    assert outcome["region"] == "us-east-1"
    assert outcome["found_by"] == "event"


def test_controls_reading_the_same_surface_share_one_read_until_a_write() -> None:
    """public-acl and object-ownership both read the ACL: one GetBucketAcl serves both."""
    bucket = make_bucket("new-private-bucket")
    before = API_CALLS.snapshot()

    outcomes = handle("CreateBucket", bucket, "public-access")

    statuses = {o["control"]: o["status"] for o in outcomes}
    assert statuses["public-acl"] == "compliant"
    assert statuses["object-ownership"] == "remediated"
    assert calls_delta(before)["s3.GetBucketAcl"] == 1
    # The verification after each write reads S3 again, not the shared answer.
    assert calls_delta(before)["s3.GetBucketOwnershipControls"] == 2
