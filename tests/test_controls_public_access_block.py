"""bucket-public-access-block: all four settings put back on, from any one off or none at all."""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden import aws
from bucketwarden.controls.public_access_block import ALL_ON, SETTINGS, BucketPublicAccessBlock
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    REGION,
    ControlCase,
    calls_delta,
    handle,
    make_bucket,
    public_bucket,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")

ALL_OFF = dict.fromkeys(SETTINGS, False)


def block(bucket: str) -> dict[str, bool] | None:
    """The bucket's configuration as S3 returns it, or None when it has none."""
    try:
        response = s3().get_public_access_block(Bucket=bucket)
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise
    return dict(response["PublicAccessBlockConfiguration"])


def put_block(bucket: str, configuration: dict[str, bool]) -> None:
    s3().put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)


def turn_off(bucket: str) -> None:
    """What the console's "Block all public access: off" writes."""
    put_block(bucket, ALL_OFF)


CASE = ControlCase(
    control="bucket-public-access-block",
    family="public-access",
    event_name="PutBucketPublicAccessBlock",
    write_operation="PutPublicAccessBlock",
    write_actions=("s3:PutBucketPublicAccessBlock",),
    # moto (5.2.6 and later) lets this PUT through whatever the IAM policy says: the refusal is
    # S3's own AccessDenied answer instead.
    denied_by_moto=False,
    drift=turn_off,
    read=block,
)


@pytest.mark.parametrize("setting", SETTINGS)
def test_one_setting_off_is_turned_back_on(setting: str) -> None:
    bucket = make_bucket("relaxed-bucket")
    put_block(bucket, {**ALL_ON, setting: False})
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == f"Block Public Access off: {setting}"
    assert outcome["before"] == {**ALL_ON, setting: False}
    assert block(bucket) == ALL_ON
    assert outcome["after"] == ALL_ON
    # Read, tags (exemption check), write, verify: the budget of 4 S3 calls.
    assert calls_delta(before_calls) == {
        "s3.GetPublicAccessBlock": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutPublicAccessBlock": 1,
    }


def test_all_four_off_are_named_and_turned_on() -> None:
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "Block Public Access off: " + ", ".join(SETTINGS)
    assert block(bucket) == ALL_ON


def test_deleted_configuration_is_put_back() -> None:
    bucket = make_bucket("unblocked-bucket")
    put_block(bucket, ALL_ON)
    s3().delete_public_access_block(Bucket=bucket)
    assert block(bucket) is None

    outcome = handle("DeleteBucketPublicAccessBlock", bucket, "public-access")[0]

    assert outcome["control"] == CASE.control
    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "no Block Public Access configuration"
    assert outcome["before"] is None
    assert block(bucket) == ALL_ON
    assert outcome["after"] == ALL_ON


def test_already_compliant_makes_no_write() -> None:
    bucket = make_bucket("blocked-bucket")
    put_block(bucket, ALL_ON)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "all four Block Public Access settings are on"
    assert calls_delta(before_calls) == {"s3.GetPublicAccessBlock": 1}
    assert block(bucket) == ALL_ON


def test_on_create_bucket_access_is_blocked_before_the_acl_is_fixed() -> None:
    """The family's controls run in catalogue order: Block Public Access first, then the ACL,
    ownership and, last, the bucket policy."""
    bucket = public_bucket("new-public-bucket")  # moto gives new buckets no configuration
    writes: list[str] = []

    def remember_write(model: Any, **_: Any) -> None:
        if model.name.startswith("Put"):
            writes.append(model.name)

    aws.client("s3", REGION).meta.events.register("before-call.s3", remember_write)

    outcomes = handle("CreateBucket", bucket, "public-access")

    assert [(o["control"], o["status"]) for o in outcomes] == [
        ("bucket-public-access-block", "remediated"),
        ("public-acl", "remediated"),
        ("object-ownership", "remediated"),
        ("secure-transport", "remediated"),
    ]
    # The ACL is owner-only once public-acl is done, so ownership needs no ACL write of its own.
    assert writes == [
        "PutPublicAccessBlock",
        "PutBucketAcl",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
    ]
    assert block(bucket) == ALL_ON


# -- evaluate() and describe() are pure -----------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [None, {}, ALL_OFF, {"BlockPublicAcls": True}, {**ALL_ON, "RestrictPublicBuckets": False}],
    ids=["none", "empty", "all-off", "one-key", "three-on"],
)
def test_desired_state_is_all_four_on_and_a_fixed_point(state: dict[str, bool] | None) -> None:
    control, settings = BucketPublicAccessBlock(), Settings()
    evaluation = control.evaluate(state, settings)
    assert not evaluation.compliant
    assert evaluation.desired == ALL_ON
    assert control.evaluate(evaluation.desired, settings).compliant


def test_a_setting_missing_from_the_answer_counts_as_off() -> None:
    evaluation = BucketPublicAccessBlock().evaluate({"BlockPublicAcls": True}, Settings())
    assert evaluation.reason == (
        "Block Public Access off: IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets"
    )


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (None, "no configuration (all off)"),
        (ALL_ON, "all four on"),
        (ALL_OFF, "all four off"),
        (
            {**ALL_ON, "BlockPublicPolicy": False, "RestrictPublicBuckets": False},
            "off: BlockPublicPolicy, RestrictPublicBuckets",
        ),
    ],
    ids=["none", "all-on", "all-off", "policy-settings-off"],
)
def test_describe(state: dict[str, bool] | None, text: str) -> None:
    assert BucketPublicAccessBlock().describe(state) == text
