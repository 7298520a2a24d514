"""multi-region-access-point-public-access-block: the account's Multi-Region Access Points, each
blocking public access; reported only (the settings are fixed at creation).

moto keeps Multi-Region Access Points per account and answers S3 Control in any region; AWS
serves them from us-west-2 only, so these tests check the region our requests go to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden import aws
from bucketwarden.controls.multi_region_access_point_public_access_block import (
    CONTROL_PLANE_REGION,
    RECREATE,
    MultiRegionAccessPointPublicAccessBlock,
)
from bucketwarden.controls.public_access_block import ALL_ON, SETTINGS
from bucketwarden.events import parse_record
from bucketwarden.outcome import Status
from bucketwarden.settings import Settings
from tests.conftest import EVENTS
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    ControlCase,
    calls_delta,
    detect_only_on,
    handle,
    make_bucket,
    s3_control_host,
    s3control,
    sweeper,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controls that only detect are on, at their default mode (conftest turns them off)."""
    detect_only_on(monkeypatch)


ALL_OFF = dict.fromkeys(SETTINGS, False)
MRAP = "open-mrap"


def make_mrap(name: str, block: dict[str, bool]) -> None:
    bucket = make_bucket(f"{name}-bucket")
    s3control().create_multi_region_access_point(
        AccountId=ACCOUNT,
        ClientToken=name,
        Details={"Name": name, "PublicAccessBlock": block, "Regions": [{"Bucket": bucket}]},
    )


def the_account(_: str) -> str:
    return ACCOUNT


def open_mrap(account: str) -> None:
    make_mrap(MRAP, ALL_OFF)


def mraps(account: str) -> dict[str, Any]:
    """The account's Multi-Region Access Points as the tests read them from moto."""
    found = s3control().list_multi_region_access_points(AccountId=account)["AccessPoints"]
    points = [
        {"Name": p["Name"], "Alias": p["Alias"], "PublicAccessBlock": p["PublicAccessBlock"]}
        for p in found
    ]
    return {"MultiRegionAccessPoints": sorted(points, key=lambda p: p["Name"])}


def create_request_parameters(account: str) -> dict[str, Any]:
    """What CloudTrail logs for CreateMultiRegionAccessPoint (sent to us-west-2)."""
    return {
        "CreateMultiRegionAccessPointRequest": {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
            "ClientToken": "token",
            "Details": {"Name": MRAP, "PublicAccessBlock": ALL_OFF},
        },
        "Host": s3_control_host(account, CONTROL_PLANE_REGION),
        "x-amz-account-id": account,
    }


CASE = ControlCase(
    control="multi-region-access-point-public-access-block",
    family="public-access",
    event_name="CreateMultiRegionAccessPoint",
    write_operation="PutMultiRegionAccessPointPolicy",  # never made: the control only reports
    write_actions=(),
    drift=open_mrap,
    read=mraps,
    service="s3control",
    scope="account",
    create=the_account,
    request_parameters=create_request_parameters,
    remove=None,
    tagged_bucket=None,
    denied_by_moto=False,
    region=CONTROL_PLANE_REGION,
    fixable=False,
    read_operation="ListMultiRegionAccessPoints",
)


class Hosts:
    """The hosts the engine's S3 Control clients sent ListMultiRegionAccessPoints to."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        for region in {REGION, CONTROL_PLANE_REGION}:
            made = aws.client("s3control", region)
            made.meta.events.register("before-send.s3-control.ListMultiRegionAccessPoints", self)

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent.append(request.url.split("/")[2])


def test_open_ones_are_reported_with_what_to_do() -> None:
    make_mrap("closed-mrap", ALL_ON)
    make_mrap("half-open-mrap", {**ALL_ON, "BlockPublicPolicy": False})
    account = CASE.drifted()
    found = mraps(account)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(account)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["scope"] == "account"
    assert outcome["bucket"] == ACCOUNT
    assert outcome["before"] == outcome["after"] == found
    assert outcome["reason"] == (
        'Block Public Access off: "half-open-mrap" (BlockPublicPolicy), "open-mrap" '
        f"(BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets); {RECREATE}"
    )
    assert calls_delta(before_calls) == {"s3control.ListMultiRegionAccessPoints": 1}


def test_requests_go_to_us_west_2_whatever_the_event_region() -> None:
    account = CASE.drifted()
    hosts = Hosts()

    CASE.run(account, region="eu-west-1")

    assert hosts.sent == [s3_control_host(ACCOUNT, CONTROL_PLANE_REGION)]


def test_the_sweep_judges_the_account_through_us_west_2() -> None:
    CASE.drifted()
    hosts = Hosts()
    control = MultiRegionAccessPointPublicAccessBlock()

    outcomes = sweeper(Settings(), (control,)).account_outcomes(REGION)

    assert [(o.control, o.status, o.bucket) for o in outcomes] == [
        (CASE.control, Status.NONCOMPLIANT, ACCOUNT)
    ]
    assert outcomes[0].mode == "notify"
    assert hosts.sent == [s3_control_host(ACCOUNT, CONTROL_PLANE_REGION)]


def test_every_page_is_read() -> None:
    for number in range(3):
        make_mrap(f"closed-{number}", ALL_ON)
    make_mrap("zz-open", ALL_OFF)
    client = aws.client("s3control", CONTROL_PLANE_REGION)
    pages: list[int] = []
    client.meta.events.register(
        "provide-client-params.s3-control.ListMultiRegionAccessPoints",
        lambda params, **_: params.update(MaxResults=1) or pages.append(1),
    )

    outcome = CASE.run(ACCOUNT)

    assert len(pages) == 4
    assert len(outcome["before"]["MultiRegionAccessPoints"]) == 4
    assert outcome["reason"].startswith('Block Public Access off: "zz-open" (')


def test_none_or_all_closed_is_compliant() -> None:
    assert CASE.run(ACCOUNT)["reason"] == "0 Multi-Region Access Points, all block public access"
    make_mrap("closed-mrap", ALL_ON)
    outcome = CASE.run(ACCOUNT, event_id="second")
    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "1 Multi-Region Access Points, all block public access"


def test_notify_by_default() -> None:
    CASE.drifted()
    record = {"request_parameters": create_request_parameters(ACCOUNT)}
    outcomes = handle(CASE.event_name, None, CASE.family, **record)
    [mine] = [o for o in outcomes if o["control"] == CASE.control]
    assert (mine["status"], mine["mode"]) == ("noncompliant", "notify")


def test_the_sample_event_names_the_account() -> None:
    record = parse_record(json.loads((EVENTS / "CreateMultiRegionAccessPoint.json").read_text()))
    assert record.awsRegion == CONTROL_PLANE_REGION
    assert MultiRegionAccessPointPublicAccessBlock().subject(record) == ACCOUNT


def test_describe() -> None:
    control = MultiRegionAccessPointPublicAccessBlock()
    state = {
        "MultiRegionAccessPoints": [
            {"Name": "a", "PublicAccessBlock": ALL_ON},
            {"Name": "b", "PublicAccessBlock": None},
        ]
    }
    assert control.describe(state) == "2 Multi-Region Access Points, 1 with Block Public Access off"
    assert not control.evaluate(state, Settings()).fixable
