"""A dry run shows the change the fix makes, for every control, and changes nothing.

Its writes are planned, not sent (`aws.PlannedWrites`): the reads after a planned write answer
what it would set, so the dry run judges and shows the state the real fix leaves.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bucketwarden.aws import PlannedWrites
from tests.helpers import ControlCase, temporary_environment
from tests.test_rollback import SCENARIOS

DRY_RUN = {"BUCKETWARDEN_DRY_RUN": "true"}


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("case", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_dry_run_plans_the_fix_the_real_run_makes(case: ControlCase) -> None:
    subject = case.drifted("planned-bucket")
    drifted = case.read(subject)

    with temporary_environment(DRY_RUN):
        planned = case.run(subject)

    assert planned["status"] == "noncompliant", planned
    assert case.read(subject) == drifted
    made = case.run(subject)
    assert made["status"] == "remediated", made
    assert planned["before"] == made["before"]
    assert planned["after"] == without_moto_zero_retention(made["after"])
    assert planned["after"] != planned["before"]


def without_moto_zero_retention(state: Any) -> Any:
    """moto answers a default retention set in days with `"Years": 0` beside it, where S3
    answers only the period that was set."""
    retention = ((state or {}).get("Configuration") or {}).get("Rule", {}).get("DefaultRetention")
    if retention and retention.get("Years") == 0 and "Days" in retention:
        del retention["Years"]
    return state


class Recorder:
    """Stands for a boto3 client: answers reads from `answers`, notes any call it is sent."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.sent.append(name)
            return self.answers[name]

        return call


def test_a_planned_write_is_not_sent_and_the_read_after_it_answers_it() -> None:
    aws = Recorder(get_bucket_versioning={"Status": "Suspended"})
    planner = PlannedWrites(aws, {})

    assert planner.get_bucket_versioning(Bucket="b") == {"Status": "Suspended"}
    planner.put_bucket_versioning(Bucket="b", VersioningConfiguration={"Status": "Enabled"})

    assert planner.get_bucket_versioning(Bucket="b") == {"Status": "Enabled"}
    assert planner.get_bucket_versioning(Bucket="other").get("Status") == "Suspended"
    assert aws.sent == ["get_bucket_versioning", "get_bucket_versioning"]


def test_a_planned_policy_write_names_the_bucket_only() -> None:
    planner = PlannedWrites(Recorder(), {})

    planner.put_bucket_policy(Bucket="b", Policy="{}", ExpectedBucketOwner="123456789012")

    assert planner.get_bucket_policy(Bucket="b") == {"Policy": "{}"}


@pytest.mark.parametrize(
    ("delete", "read", "code"),
    [
        ("delete_bucket_policy", "get_bucket_policy", "NoSuchBucketPolicy"),
        (
            "delete_public_access_block",
            "get_public_access_block",
            "NoSuchPublicAccessBlockConfiguration",
        ),
        (
            "delete_bucket_ownership_controls",
            "get_bucket_ownership_controls",
            "OwnershipControlsNotFoundError",
        ),
    ],
)
def test_after_a_planned_delete_the_read_answers_as_s3_does(
    delete: str, read: str, code: str
) -> None:
    planner = PlannedWrites(Recorder(), {})

    getattr(planner, delete)(Bucket="b")

    with pytest.raises(ClientError) as raised:
        getattr(planner, read)(Bucket="b")
    assert raised.value.response["Error"]["Code"] == code


def test_a_bucket_without_its_encryption_configuration_has_s3s_default() -> None:
    planner = PlannedWrites(Recorder(), {})

    planner.delete_bucket_encryption(Bucket="b")

    rules = planner.get_bucket_encryption(Bucket="b")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_a_write_it_cannot_plan_is_refused_not_sent() -> None:
    aws = Recorder()
    planner = PlannedWrites(aws, {})

    with pytest.raises(TypeError, match="cannot tell what put_bucket_tagging"):
        planner.put_bucket_tagging(Bucket="b", Tagging={"TagSet": []}, ContentMD5="x")
    assert aws.sent == []
