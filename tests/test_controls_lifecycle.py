"""lifecycle: an enabled lifecycle rule (FSBP S3.13), and on a versioned bucket one that expires
noncurrent versions (S3.10); detect only."""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.controls.lifecycle import Lifecycle
from bucketwarden.settings import Mode, Settings
from tests.helpers import API_CALLS, ControlCase, calls_delta, detect_only_on, make_bucket, s3

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controls that only detect are on, at their default mode (conftest turns them off)."""
    detect_only_on(monkeypatch)


EXPIRE_LOGS = {"ID": "expire-logs", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
NONCURRENT = {
    "ID": "old-versions",
    "Filter": {},
    "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
}


def put_rules(bucket: str, *rules: dict[str, Any], status: str = "Enabled") -> None:
    configuration = {"Rules": [{**rule, "Status": status} for rule in rules]}
    s3().put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=configuration)


def disable_rules(bucket: str) -> None:
    put_rules(bucket, EXPIRE_LOGS, status="Disabled")


def lifecycle(bucket: str) -> list[dict[str, Any]] | None:
    try:
        return list(s3().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return None
        raise


def enable_versioning(bucket: str) -> None:
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


CASE = ControlCase(
    control="lifecycle",
    family="data-management",
    event_name="PutBucketLifecycle",
    write_operation="PutBucketLifecycleConfiguration",
    write_actions=("s3:PutLifecycleConfiguration",),
    drift=disable_rules,
    read=lifecycle,
    fixable=False,
    # moto's IAM enforcement lets this read through: the refusal is S3's own AccessDenied.
    denied_by_moto=False,
    read_operation="GetBucketLifecycleConfiguration",
    read_actions=("s3:GetLifecycleConfiguration",),
)


def test_disabled_rules_are_reported_as_nothing_expiring() -> None:
    bucket = CASE.drifted_bucket()
    before = API_CALLS.snapshot()

    outcome = CASE.run(bucket, own_default=True)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["mode"] == "notify"  # its default: an upgrade changes no bucket
    assert outcome["reason"] == "all 1 lifecycle rules are disabled: nothing ever expires or moves"
    assert outcome["before"] == outcome["after"]
    assert lifecycle(bucket) == [{**EXPIRE_LOGS, "Status": "Disabled"}]
    assert calls_delta(before) == {
        "s3.GetBucketLifecycleConfiguration": 1,
        "s3.GetBucketVersioning": 1,
        "s3.GetBucketTagging": 1,
    }


def test_deleted_lifecycle_configuration_is_reported() -> None:
    bucket = make_bucket("no-rules-bucket")
    put_rules(bucket, EXPIRE_LOGS)
    s3().delete_bucket_lifecycle(Bucket=bucket)

    outcome = CASE.run(bucket, event_id="delete-event")

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].startswith("the bucket has no lifecycle configuration")
    assert outcome["before"] == {"VersioningStatus": None}


def test_an_enabled_rule_on_an_unversioned_bucket_is_compliant() -> None:
    bucket = make_bucket("rules-bucket")
    put_rules(bucket, EXPIRE_LOGS)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "1 enabled lifecycle rule(s): 'expire-logs'"


def test_versioned_bucket_must_expire_noncurrent_versions() -> None:
    bucket = make_bucket("versioned-bucket")
    enable_versioning(bucket)
    put_rules(bucket, EXPIRE_LOGS)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert (
        "versioning is Enabled but no enabled lifecycle rule expires noncurrent"
        in (outcome["reason"])
    )

    put_rules(bucket, EXPIRE_LOGS, NONCURRENT)
    outcome = CASE.run(bucket, event_id="second-event")
    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"].endswith("noncurrent versions expire ('old-versions')")


def test_a_disabled_noncurrent_rule_does_not_count() -> None:
    state = {
        "Rules": [{**EXPIRE_LOGS, "Status": "Enabled"}, {**NONCURRENT, "Status": "Disabled"}],
        "VersioningStatus": "Enabled",
    }
    verdict = Lifecycle().evaluate(state, Settings())
    assert not verdict.compliant
    assert not verdict.fixable


def test_describe_says_what_is_enabled() -> None:
    control = Lifecycle()
    assert control.describe({"VersioningStatus": None}) == "no lifecycle rules"
    state = {"Rules": [{**NONCURRENT, "Status": "Enabled"}, {**EXPIRE_LOGS, "Status": "Disabled"}]}
    assert control.describe(state) == "1 of 2 lifecycle rules enabled, noncurrent versions expire"


def test_an_unset_mode_is_the_controls_own_default() -> None:
    unset = Settings.from_env(CONTROL_IDS, {})
    assert unset.mode("lifecycle", Lifecycle.default_mode) is Mode.NOTIFY
    assert unset.mode("versioning", control("versioning").default_mode) is Mode.REMEDIATE
    chosen = Settings.from_env(CONTROL_IDS, {"MODE_LIFECYCLE": "off"})
    assert chosen.mode("lifecycle", Lifecycle.default_mode) is Mode.OFF
