"""access-point-public-access-block: an access point's own Block Public Access, reported only.

It is fixed when the access point is created, so the control never writes: the finding names the
settings that are off and says to re-create the access point.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden.controls.access_point_public_access_block import (
    RECREATE,
    AccessPointPublicAccessBlock,
)
from bucketwarden.controls.public_access_block import ALL_ON
from bucketwarden.events import parse_record
from bucketwarden.settings import Settings
from tests.conftest import EVENTS
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    ControlCase,
    calls_delta,
    detect_only_on,
    handle,
    s3_control_host,
    s3control,
)
from tests.test_controls_access_point import (
    ALL_OFF,
    bucket_of,
    delete_access_point,
    make_access_point,
    name_of,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controls that only detect are on, at their default mode (conftest turns them off)."""
    detect_only_on(monkeypatch)


def open_access_point(bucket: str) -> str:
    """An access point created with its own Block Public Access off: the drift."""
    return make_access_point(bucket, block=ALL_OFF)


def already_drifted(_: str) -> None:
    """Nothing to do: the settings were chosen at creation and cannot change."""


def access_point_state(arn: str) -> dict[str, Any]:
    point = s3control().get_access_point(AccountId=ACCOUNT, Name=name_of(arn))
    return {
        "Name": point["Name"],
        "Bucket": point["Bucket"],
        "BucketAccountId": point.get("BucketAccountId"),
        "NetworkOrigin": point["NetworkOrigin"],
        "PublicAccessBlockConfiguration": point["PublicAccessBlockConfiguration"],
    }


def create_request_parameters(arn: str) -> dict[str, Any]:
    """What CloudTrail logs for CreateAccessPoint: the name, the account, the body."""
    return {
        "name": name_of(arn),
        "x-amz-account-id": ACCOUNT,
        "Host": s3_control_host(),
        "CreateAccessPointRequest": {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
            "Bucket": name_of(arn).removesuffix("-ap"),  # as make_access_point names them
            "PublicAccessBlockConfiguration": ALL_OFF,
        },
    }


CASE = ControlCase(
    control="access-point-public-access-block",
    family="public-access",
    event_name="CreateAccessPoint",
    write_operation="PutAccessPointPolicy",  # never made: the control only reports
    write_actions=(),
    drift=already_drifted,
    read=access_point_state,
    service="s3control",
    scope="access-point",
    create=open_access_point,
    request_parameters=create_request_parameters,
    remove=delete_access_point,
    tagged_bucket=bucket_of,
    denied_by_moto=False,
    fixable=False,
    read_operation="GetAccessPoint",
)


def test_settings_off_are_reported_with_what_to_do() -> None:
    arn = CASE.drifted()
    drifted = access_point_state(arn)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["scope"] == "access-point"
    assert outcome["bucket"] == arn
    assert outcome["before"] == outcome["after"] == drifted
    assert outcome["reason"] == (
        "Block Public Access off: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, "
        f"RestrictPublicBuckets; {RECREATE}"
    )
    assert access_point_state(arn) == drifted
    # One read; the bucket's tags (an exemption could apply); no write.
    assert calls_delta(before_calls) == {"s3control.GetAccessPoint": 1, "s3.GetBucketTagging": 1}


def test_notify_by_default() -> None:
    arn = open_access_point("default-mode-bucket")
    record = {"request_parameters": create_request_parameters(arn)}
    outcomes = handle("CreateAccessPoint", None, CASE.family, **record)

    [mine] = [o for o in outcomes if o["control"] == CASE.control]
    assert (mine["status"], mine["mode"]) == ("noncompliant", "notify")


def test_one_setting_off_is_named() -> None:
    arn = make_access_point("half-open-bucket", block={**ALL_ON, "RestrictPublicBuckets": False})
    outcome = CASE.run(arn)
    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].startswith("Block Public Access off: RestrictPublicBuckets; ")


def test_all_four_on_is_compliant() -> None:
    arn = make_access_point("closed-bucket")
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(arn)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "all four Block Public Access settings are on"
    assert calls_delta(before_calls) == {"s3control.GetAccessPoint": 1}


def test_a_vpc_access_point_is_judged_too() -> None:
    arn = make_access_point("vpc-bucket", block=ALL_OFF, vpc_id="vpc-0a1b2c3d4e5f67890")
    assert CASE.run(arn)["status"] == "noncompliant"


def test_the_sample_event_names_the_access_point() -> None:
    record = parse_record(json.loads((EVENTS / "CreateAccessPoint.json").read_text()))
    assert AccessPointPublicAccessBlock().subject(record) == (
        "arn:aws:s3:us-east-1:123456789012:accesspoint/bucketwarden-demo-ap"
    )


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (None, "none"),
        ({"PublicAccessBlockConfiguration": ALL_ON}, "Block Public Access on"),
        (
            {"PublicAccessBlockConfiguration": {**ALL_ON, "BlockPublicPolicy": False}},
            "Block Public Access off: BlockPublicPolicy",
        ),
    ],
)
def test_describe(state: dict[str, Any] | None, text: str) -> None:
    assert AccessPointPublicAccessBlock().describe(state) == text


def test_missing_configuration_counts_as_off() -> None:
    evaluation = AccessPointPublicAccessBlock().evaluate({"Name": "x"}, Settings())
    assert not evaluation.compliant
    assert not evaluation.fixable
