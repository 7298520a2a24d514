"""object-lock-retention: default retention never weaker than the configured or recorded one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bucketwarden.controls.object_lock_retention import (
    NOT_ENABLED,
    ObjectLockRetention,
    retention,
    strongest,
)
from bucketwarden.handler import process
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings
from bucketwarden_tools.stack import DEFAULT_MAC_KEY
from tests.helpers import (
    API_CALLS,
    ControlCase,
    audit_store,
    calls_delta,
    cloudtrail_record,
    create_table,
    make_bucket,
    own_client,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"
BASELINE = {"OBJECT_LOCK_MODE": "GOVERNANCE", "OBJECT_LOCK_DAYS": "30"}
# The test environment's audit record key (conftest sets AUDIT_MAC_KEY to it).
KEYED = Settings(audit_mac_key=DEFAULT_MAC_KEY)


def lock_state(bucket: str) -> dict[str, Any]:
    """The state as the control reads it when no audit table is configured."""
    try:
        configuration = s3().get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "ObjectLockConfigurationNotFoundError":
            raise
        configuration = None
    return {"Configuration": configuration, "RecordedBaseline": None}


def default_rule(bucket: str) -> dict[str, Any] | None:
    return retention(
        (lock_state(bucket)["Configuration"] or {}).get("Rule", {}).get("DefaultRetention")
    )


def set_retention(bucket: str, mode: str | None = None, **period: int) -> None:
    """Put a default retention (mode and Days= or Years=), or Object Lock without one."""
    configuration: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
    if mode:
        configuration["Rule"] = {"DefaultRetention": {"Mode": mode, **period}}
    s3().put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=configuration)


def locked_bucket(name: str = "locked-bucket", mode: str | None = None, **period: int) -> str:
    s3().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if mode:
        set_retention(name, mode, **period)
    return name


def weaken(bucket: str) -> None:
    """Object Lock turned on for an existing bucket (S3 allows it on versioned buckets since
    2023), with a default retention far below the baseline."""
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    set_retention(bucket, "GOVERNANCE", Days=1)


CASE = ControlCase(
    control="object-lock-retention",
    family="object-lock",
    event_name="PutObjectLockConfiguration",
    write_operation="PutObjectLockConfiguration",
    write_actions=("s3:PutBucketObjectLockConfiguration",),
    # moto (5.2.6 and later) lets this PUT through whatever the IAM policy says: the refusal is
    # S3's own AccessDenied answer instead.
    denied_by_moto=False,
    drift=weaken,
    read=lock_state,
    environment=BASELINE,
)


def with_baseline(mode: str, days: int) -> ControlCase:
    return replace(CASE, environment={"OBJECT_LOCK_MODE": mode, "OBJECT_LOCK_DAYS": str(days)})


def audit_table(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    return AUDIT_TABLE


def recorded(bucket: str, rule: dict[str, Any], control: str = CASE.control) -> None:
    """An earlier remediation on record: its after holds `rule` as the default retention."""
    after = {
        "Configuration": {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}},
        "RecordedBaseline": None,
    }
    outcome = Outcome(bucket, control, Status.REMEDIATED, "earlier drift", before=None, after=after)
    audit_store(KEYED, AUDIT_TABLE, own_client("dynamodb")).record(outcome)


# -- drift -------------------------------------------------------------------------------------


def test_weaker_rule_is_raised_to_the_configured_baseline() -> None:
    bucket = CASE.drifted_bucket()
    drifted = lock_state(bucket)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == (
        "default retention GOVERNANCE 1 day is weaker than the configured baseline "
        "GOVERNANCE 30 days"
    )
    assert outcome["before"] == drifted
    assert default_rule(bucket) == {"Mode": "GOVERNANCE", "Days": 30}
    assert outcome["after"] == lock_state(bucket)
    assert calls_delta(before_calls) == {
        "s3.GetObjectLockConfiguration": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutObjectLockConfiguration": 1,
    }


@pytest.mark.parametrize(
    ("mode", "period", "reason"),
    [
        ("GOVERNANCE", {"Days": 30}, "default retention GOVERNANCE 30 days is weaker than"),
        ("COMPLIANCE", {"Days": 10}, "default retention COMPLIANCE 10 days is weaker than"),
        (None, {}, "no default retention;"),
    ],
    ids=["governance-same-days", "fewer-days", "removed"],
)
def test_weaker_or_removed_default_is_restored(
    mode: str | None, period: dict[str, int], reason: str
) -> None:
    bucket = locked_bucket("locked-bucket", mode, **period)

    outcome = with_baseline("COMPLIANCE", 30).run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"].startswith(reason)
    assert "the configured baseline COMPLIANCE 30 days" in outcome["reason"]
    assert default_rule(bucket) == {"Mode": "COMPLIANCE", "Days": 30}


@pytest.mark.parametrize(
    ("baseline_days", "compliant"), [(365, True), (366, False)], ids=["365-days", "366-days"]
)
def test_a_year_counts_as_365_days(baseline_days: int, compliant: bool) -> None:
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Years=1)

    outcome = with_baseline("GOVERNANCE", baseline_days).run(bucket)

    assert outcome["status"] == ("compliant" if compliant else "remediated"), outcome
    expected = (
        {"Mode": "GOVERNANCE", "Years": 1} if compliant else {"Mode": "GOVERNANCE", "Days": 366}
    )
    assert default_rule(bucket) == expected


@pytest.mark.parametrize(
    ("mode", "period"),
    [("GOVERNANCE", {"Days": 60}), ("COMPLIANCE", {"Days": 1}), ("GOVERNANCE", {"Years": 1})],
    ids=["more-days", "compliance-beats-governance", "years"],
)
def test_stronger_than_the_baseline_is_compliant_and_untouched(
    mode: str, period: dict[str, int]
) -> None:
    bucket = locked_bucket("locked-bucket", mode, **period)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert "is not weaker than the configured baseline GOVERNANCE 30 days" in outcome["reason"]
    assert calls_delta(before_calls) == {"s3.GetObjectLockConfiguration": 1}
    assert default_rule(bucket) == {"Mode": mode, **period}


# -- the recorded baseline ---------------------------------------------------------------------


def test_recorded_baseline_stronger_than_the_configured_one_is_restored_in_its_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit_table(monkeypatch)
    bucket = locked_bucket("locked-bucket", "COMPLIANCE", Days=30)
    recorded(bucket, {"Mode": "COMPLIANCE", "Years": 1})
    # Neither another bucket's nor another control's records count.
    recorded("other-bucket", {"Mode": "COMPLIANCE", "Years": 10})
    recorded(bucket, {"Mode": "COMPLIANCE", "Years": 10}, control="versioning")
    before_calls = API_CALLS.snapshot()

    # COMPLIANCE is configured: a recorded COMPLIANCE rule may then be applied.
    outcome = with_baseline("COMPLIANCE", 1).run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == (
        "default retention COMPLIANCE 30 days is weaker than the recorded baseline "
        "COMPLIANCE 1 year"
    )
    assert outcome["before"]["RecordedBaseline"] == {"Mode": "COMPLIANCE", "Years": 1}
    assert default_rule(bucket) == {"Mode": "COMPLIANCE", "Years": 1}
    assert calls_delta(before_calls) == {
        "s3.GetObjectLockConfiguration": 2,
        # The recorded baseline (read once: the verify reuses it) and the flap breaker's count.
        "dynamodb.Query": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutObjectLockConfiguration": 1,
        # The audit record, written ahead of the fix (pending) and completed after the verify.
        "dynamodb.PutItem": 2,
        # The recorded rule's tag verified; both writes tagged.
        "kms.VerifyMac": 1,
        "kms.GenerateMac": 2,
    }


def test_a_fixed_drift_stays_the_baseline_in_governance_when_compliance_is_unconfigured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit_table(monkeypatch)
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    assert with_baseline("COMPLIANCE", 30).run(bucket)["status"] == "remediated"

    set_retention(bucket, "GOVERNANCE", Days=1)
    outcomes = process(cloudtrail_record(CASE.event_name, bucket), CASE.family)

    assert [o["status"] for o in outcomes] == ["remediated"]
    # A recorded COMPLIANCE rule counts as GOVERNANCE once COMPLIANCE is no longer configured.
    assert "the recorded baseline GOVERNANCE 30 days" in outcomes[0]["reason"]
    assert default_rule(bucket) == {"Mode": "GOVERNANCE", "Days": 30}


def test_no_baseline_at_all_is_compliant_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    audit_table(monkeypatch)
    bucket = locked_bucket("locked-bucket", "GOVERNANCE", Days=1)
    before_calls = API_CALLS.snapshot()

    outcomes = process(cloudtrail_record(CASE.event_name, bucket), CASE.family)

    assert [(o["status"], o["reason"]) for o in outcomes] == [
        (
            "compliant",
            "no baseline: OBJECT_LOCK_MODE is not set and none is recorded for the bucket",
        )
    ]
    assert calls_delta(before_calls) == {"s3.GetObjectLockConfiguration": 1, "dynamodb.Query": 1}


def test_bucket_without_object_lock_is_compliant_and_the_audit_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit_table(monkeypatch)
    bucket = make_bucket("plain-bucket")
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == NOT_ENABLED
    assert outcome["before"] == {"Configuration": None, "RecordedBaseline": None}
    assert calls_delta(before_calls) == {"s3.GetObjectLockConfiguration": 1}


# -- judging states ----------------------------------------------------------------------------


def test_retention_reads_the_one_positive_period() -> None:
    """moto returns Days and Years, the unused one as 0; S3 returns only the one set."""
    assert retention({"Mode": "COMPLIANCE", "Days": 0, "Years": 2}) == {
        "Mode": "COMPLIANCE",
        "Years": 2,
    }
    assert retention({"Mode": "COMPLIANCE", "Days": 0}) is None
    assert retention({"Mode": "UNKNOWN", "Days": 3}) is None


def test_strongest_orders_by_mode_then_days() -> None:
    rules = [
        {"Mode": "GOVERNANCE", "Years": 10},
        {"Mode": "COMPLIANCE", "Days": 1},
        {"Mode": "COMPLIANCE", "Days": 400},
        {"Mode": "COMPLIANCE", "Years": 1},
        None,
    ]
    assert strongest(rules) == {"Mode": "COMPLIANCE", "Days": 400}
    assert strongest([None]) is None


def test_desired_state_is_a_fixed_point() -> None:
    control = ObjectLockRetention()
    settings = Settings(object_lock_mode="COMPLIANCE", object_lock_days=30)
    state = {
        "Configuration": {"ObjectLockEnabled": "Enabled"},
        "RecordedBaseline": {"Mode": "GOVERNANCE", "Years": 5},
    }
    evaluation = control.evaluate(state, settings)
    assert not evaluation.compliant
    assert evaluation.desired == {
        "Configuration": {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}},
        },
        "RecordedBaseline": {"Mode": "GOVERNANCE", "Years": 5},
    }
    assert control.evaluate(evaluation.desired, settings).compliant


def test_describe() -> None:
    control = ObjectLockRetention()
    assert control.describe({"Configuration": None}) == "Object Lock off"
    state = {
        "Configuration": {"ObjectLockEnabled": "Enabled"},
        "RecordedBaseline": {"Mode": "COMPLIANCE", "Years": 1},
    }
    assert control.describe(state) == (
        "Object Lock on, no default retention (recorded baseline COMPLIANCE 1 year)"
    )


# -- exemptions --------------------------------------------------------------------------------
