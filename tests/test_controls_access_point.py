"""access-point: public statements leave internet access point policies; the rest stays.

moto stores access points and their policies as S3 does, but enforces none of Block Public Access
(S3 refuses a public policy while the access point's BlockPublicPolicy is on), and its
GetAccessPointPolicyStatus calls every policy public: the control never asks it, and these tests
judge by the policy moto returns.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden.controls.access_point import FIXED_AT_CREATION, AccessPointPolicy
from bucketwarden.controls.public_access_block import ALL_ON, SETTINGS
from bucketwarden.events import parse_record
from bucketwarden.handler import process
from bucketwarden.policy import analyze
from bucketwarden.settings import Settings
from tests.conftest import EVENTS
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    ControlCase,
    calls_delta,
    check_exempted,
    check_exemption_not_honoured,
    cloudtrail_record,
    eventbridge_event,
    handle,
    make_bucket,
    s3_control_host,
    s3control,
)

pytestmark = pytest.mark.usefixtures("aws")

ALL_OFF = dict.fromkeys(SETTINGS, False)
ANALYTICS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/analytics"


def arn_of(name: str) -> str:
    return f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{name}"


def name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def make_access_point(
    bucket: str, *, block: dict[str, bool] | None = None, vpc_id: str | None = None
) -> str:
    """A bucket and an access point "<bucket>-ap" to it; returns the access point's ARN."""
    make_bucket(bucket)
    name = f"{bucket}-ap"
    extra: dict[str, Any] = {"VpcConfiguration": {"VpcId": vpc_id}} if vpc_id else {}
    s3control().create_access_point(
        AccountId=ACCOUNT,
        Name=name,
        Bucket=bucket,
        PublicAccessBlockConfiguration=ALL_ON if block is None else block,
        **extra,
    )
    return arn_of(name)


def open_access_point(bucket: str) -> str:
    """An internet access point created with its own Block Public Access off (as S3 requires
    for a public policy to be accepted)."""
    return make_access_point(bucket, block=ALL_OFF)


def statement(sid: str, principal: Any, arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"{arn}/object/*",
        **extra,
    }


def public_read(arn: str) -> dict[str, Any]:
    return statement("PublicRead", "*", arn)


def analytics_read(arn: str) -> dict[str, Any]:
    return statement("AnalyticsRead", {"AWS": ANALYTICS_ROLE}, arn)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def put_policy(arn: str, document: dict[str, Any]) -> None:
    s3control().put_access_point_policy(
        AccountId=ACCOUNT, Name=name_of(arn), Policy=json.dumps(document)
    )


def make_public(arn: str) -> None:
    """One public statement before one for a fixed role."""
    put_policy(arn, policy(public_read(arn), analytics_read(arn)))


def access_point_state(arn: str) -> dict[str, Any]:
    """The access point and its policy as the tests read them from moto."""
    point = s3control().get_access_point(AccountId=ACCOUNT, Name=name_of(arn))
    try:
        text = s3control().get_access_point_policy(AccountId=ACCOUNT, Name=name_of(arn))["Policy"]
    except s3control().exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchAccessPointPolicy":
            raise
        text = None
    return {
        "Name": point["Name"],
        "Bucket": point["Bucket"],
        "BucketAccountId": point.get("BucketAccountId"),
        "NetworkOrigin": point["NetworkOrigin"],
        "PublicAccessBlockConfiguration": point["PublicAccessBlockConfiguration"],
        "Policy": None if text is None else json.loads(text),
    }


def access_point_request_parameters(arn: str) -> dict[str, Any]:
    """What CloudTrail logs for PutAccessPointPolicy: the name, the account header, the body."""
    return {
        "name": name_of(arn),
        "x-amz-account-id": ACCOUNT,
        "Host": s3_control_host(),
        "PutAccessPointPolicyRequest": {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
            "Policy": json.dumps(policy(public_read(arn))),
        },
    }


def bucket_of(arn: str) -> str:
    return str(s3control().get_access_point(AccountId=ACCOUNT, Name=name_of(arn))["Bucket"])


def delete_access_point(arn: str) -> None:
    s3control().delete_access_point(AccountId=ACCOUNT, Name=name_of(arn))


CASE = ControlCase(
    control="access-point",
    family="public-access",
    event_name="PutAccessPointPolicy",
    write_operation="PutAccessPointPolicy",
    write_actions=("s3:PutAccessPointPolicy",),
    drift=make_public,
    read=access_point_state,
    service="s3control",
    scope="access-point",
    create=open_access_point,
    request_parameters=access_point_request_parameters,
    remove=delete_access_point,
    tagged_bucket=bucket_of,
    denied_by_moto=False,  # see ControlCase: moto's S3 Control AccessDenied has no readable code
)


def test_drift_fixed_removes_only_the_public_statement() -> None:
    arn = CASE.drifted()
    drifted = access_point_state(arn)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "remediated", outcome
    assert outcome["scope"] == "access-point"
    assert outcome["bucket"] == arn
    assert outcome["before"] == drifted
    assert access_point_state(arn)["Policy"] == policy(analytics_read(arn))
    assert outcome["after"] == access_point_state(arn)
    assert outcome["reason"].startswith('Statement "PublicRead" is public: it allows "*"')
    # What cannot be fixed is named, not attempted.
    assert (
        "its own Block Public Access is off (BlockPublicAcls, IgnorePublicAcls, "
        f"BlockPublicPolicy, RestrictPublicBuckets) and {FIXED_AT_CREATION}"
    ) in outcome["reason"]
    assert access_point_state(arn)["PublicAccessBlockConfiguration"] == ALL_OFF
    # Read (access point, policy), the bucket's tags, write, verify.
    assert calls_delta(before_calls) == {
        "s3control.GetAccessPoint": 2,
        "s3control.GetAccessPointPolicy": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3control.PutAccessPointPolicy": 1,
    }


def test_a_policy_of_public_statements_only_is_deleted() -> None:
    arn = open_access_point("wide-open-bucket")
    put_policy(arn, policy(public_read(arn)))
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "remediated", outcome
    assert access_point_state(arn)["Policy"] is None
    assert outcome["after"]["Policy"] is None
    assert calls_delta(before_calls)["s3control.DeleteAccessPointPolicy"] == 1
    assert "s3control.PutAccessPointPolicy" not in calls_delta(before_calls)


def test_already_compliant_makes_no_write() -> None:
    arn = make_access_point("private-bucket")
    put_policy(arn, policy(analytics_read(arn)))
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "internet access point, no public statement"
    assert calls_delta(before_calls) == {
        "s3control.GetAccessPoint": 1,
        "s3control.GetAccessPointPolicy": 1,
    }


def test_new_access_point_without_a_policy_is_compliant() -> None:
    arn = make_access_point("new-bucket")
    record = {"request_parameters": {"name": name_of(arn), "Host": s3_control_host()}}

    outcomes = handle("CreateAccessPoint", None, CASE.family, **record)

    [outcome] = [o for o in outcomes if o["control"] == CASE.control]

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "internet access point, no policy"


def test_vpc_access_point_is_compliant_whatever_its_policy() -> None:
    arn = make_access_point("vpc-bucket", block=ALL_OFF, vpc_id="vpc-0a1b2c3d4e5f67890")
    make_public(arn)
    drifted = access_point_state(arn)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "VPC access point: not reachable from the internet"
    assert access_point_state(arn) == drifted
    assert "s3control.PutAccessPointPolicy" not in calls_delta(before_calls)


def test_own_block_public_access_off_is_reported_as_fixed_at_creation() -> None:
    """Nothing public yet: compliant, but the reason says the block cannot be turned on."""
    arn = make_access_point("half-open-bucket", block={**ALL_ON, "BlockPublicPolicy": False})
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == (
        "internet access point, no policy; its own Block Public Access is off "
        f"(BlockPublicPolicy) and {FIXED_AT_CREATION}"
    )
    assert not [call for call in calls_delta(before_calls) if ".Put" in call or ".Delete" in call]


def test_data_access_point_arn_does_not_make_an_access_point_policy_non_public() -> None:
    """In a bucket policy this condition restricts access to the access point; in the access
    point's own policy every request through it carries that ARN, so it restricts nothing."""
    arn = open_access_point("pinned-bucket")
    pinned = statement(
        "ThroughThisAccessPoint",
        "*",
        arn,
        Condition={"StringEquals": {"s3:DataAccessPointArn": arn}},
    )
    put_policy(arn, policy(pinned, analytics_read(arn)))
    assert not analyze(policy(pinned), "bucket").public

    outcome = CASE.run(arn)

    assert outcome["status"] == "remediated", outcome
    assert "does not make an access point policy non-public" in outcome["reason"]
    assert access_point_state(arn)["Policy"] == policy(analytics_read(arn))


def test_restricted_statements_are_kept() -> None:
    arn = open_access_point("org-bucket")
    org_only = statement(
        "Organization",
        "*",
        arn,
        Condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
    )
    put_policy(arn, policy(org_only))
    assert CASE.run(arn)["status"] == "compliant"
    assert access_point_state(arn)["Policy"] == policy(org_only)


# -- exemptions: the tags of the bucket the access point serves --------------------------------


def test_exempted_through_the_bucket_tag() -> None:
    outcome = check_exempted(
        CASE,
        {
            "bucketwarden:exempt": "access-point",
            "bucketwarden:exempt-reason": "public dataset published through an access point",
        },
    )
    assert "public dataset" in outcome["reason"]


def test_expired_exemption_is_not_honoured() -> None:
    check_exemption_not_honoured(
        CASE,
        {
            "bucketwarden:exempt": "all",
            "bucketwarden:exempt-reason": "launch",
            "bucketwarden:exempt-until": "2024-02-29",
        },
        "expired on 2024-02-29",
    )


def test_a_bucket_in_another_account_gives_no_exemption() -> None:
    """Its tags are not this account's to read: only the control's mode applies."""
    control, arn = AccessPointPolicy(), arn_of("shared-ap")
    state = {"Bucket": "partner-bucket", "BucketAccountId": "210987654321"}
    assert control.exemption_bucket(arn, state) is None
    assert control.exemption_bucket(arn, {**state, "BucketAccountId": ACCOUNT}) == "partner-bucket"


# -- which access point an event names ---------------------------------------------------------


def test_event_without_a_name_is_ignored_with_a_reason() -> None:
    raw = cloudtrail_record("CreateAccessPoint", None, request_parameters={"Host": "..."})
    before_calls = API_CALLS.snapshot()

    outcomes = process(eventbridge_event(raw), CASE.family)

    assert [(o["status"], o["reason"]) for o in outcomes] == [
        ("ignored", "CreateAccessPoint names no access-point")
    ]
    assert calls_delta(before_calls) == {}


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/reports"),
        ("cn-north-1", f"arn:aws-cn:s3:cn-north-1:{ACCOUNT}:accesspoint/reports"),
        ("us-gov-west-1", f"arn:aws-us-gov:s3:us-gov-west-1:{ACCOUNT}:accesspoint/reports"),
    ],
)
def test_subject_is_the_access_point_arn(region: str, expected: str) -> None:
    raw = cloudtrail_record("PutAccessPointPolicy", None, region=region)
    raw["requestParameters"] = {"name": "reports", "x-amz-account-id": ACCOUNT}
    assert AccessPointPolicy().subject(parse_record(raw)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (arn_of("reports"), arn_of("reports")),  # the API takes an ARN as the name too
        ("Not_A_Name", None),
        ("ab", None),
        ("arn:aws:s3:us-east-1:123456789012:bucket/reports", None),
    ],
)
def test_names_that_are_no_access_point(name: str, expected: str | None) -> None:
    raw = cloudtrail_record("PutAccessPointPolicy", None, request_parameters={"name": name})
    assert AccessPointPolicy().subject(parse_record(raw)) == expected


@pytest.mark.parametrize("sample", ["CreateAccessPoint.json", "PutAccessPointPolicy.json"])
def test_sample_events_name_the_access_point(sample: str) -> None:
    record = parse_record(json.loads((EVENTS / sample).read_text()))
    assert AccessPointPolicy().subject(record) == (
        "arn:aws:s3:us-east-1:123456789012:accesspoint/bucketwarden-demo-ap"
    )


# -- evaluate() and describe() are pure --------------------------------------------------------


def test_a_policy_that_cannot_be_judged_is_reported_not_changed() -> None:
    state = {"NetworkOrigin": "Internet", "PublicAccessBlockConfiguration": ALL_ON}
    evaluation = AccessPointPolicy().evaluate({**state, "Policy": {"Id": "x"}}, Settings())
    assert not evaluation.compliant
    assert not evaluation.fixable
    assert (
        evaluation.reason
        == "the access point policy cannot be judged: the document has no Statement"
    )


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (None, "none"),
        (
            {"NetworkOrigin": "VPC", "PublicAccessBlockConfiguration": ALL_ON, "Policy": None},
            "VPC origin, no policy, Block Public Access on",
        ),
        (
            {
                "NetworkOrigin": "Internet",
                "PublicAccessBlockConfiguration": {**ALL_ON, "BlockPublicPolicy": False},
                "Policy": policy(public_read(arn_of("reports"))),
            },
            "internet origin, public policy, Block Public Access off: BlockPublicPolicy",
        ),
    ],
    ids=["none", "vpc", "public"],
)
def test_describe(state: dict[str, Any] | None, text: str) -> None:
    assert AccessPointPolicy().describe(state) == text
