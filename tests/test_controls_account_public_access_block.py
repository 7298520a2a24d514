"""account-public-access-block: the account's four settings put back on, through S3 Control."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden.controls.account_public_access_block import AccountPublicAccessBlock
from bucketwarden.controls.public_access_block import ALL_ON, SETTINGS
from bucketwarden.events import parse_record
from bucketwarden.handler import process
from bucketwarden.settings import Settings
from tests.conftest import EVENTS, load_sample
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    ControlCase,
    calls_delta,
    cloudtrail_record,
    handle,
    make_bucket,
    s3_control_host,
    s3control,
    tag_bucket,
)

pytestmark = pytest.mark.usefixtures("aws")

ALL_OFF = dict.fromkeys(SETTINGS, False)


def account_block(account: str) -> dict[str, bool] | None:
    """The account's configuration as S3 Control returns it, or None when it has none."""
    try:
        response = s3control().get_public_access_block(AccountId=account)
    except s3control().exceptions.NoSuchPublicAccessBlockConfiguration:
        return None
    return dict(response["PublicAccessBlockConfiguration"])


def put_account_block(account: str, configuration: dict[str, bool]) -> None:
    s3control().put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=configuration
    )


def turn_off(account: str) -> None:
    """What the console's account-level "Block all public access: off" writes."""
    put_account_block(account, ALL_OFF)


def the_account(_: str) -> str:
    """Every test runs in moto's one account: there is nothing to create."""
    return ACCOUNT


def account_request_parameters(account: str) -> dict[str, Any]:
    """What CloudTrail logs for PutAccountPublicAccessBlock: the body and the S3 Control host."""
    return {
        "PublicAccessBlockConfiguration": {
            "xmlns": "http://awss3control.amazonaws.com/doc/2018-08-20/",
            **ALL_OFF,
        },
        "Host": s3_control_host(account),
    }


CASE = ControlCase(
    control="account-public-access-block",
    family="public-access",
    event_name="PutAccountPublicAccessBlock",
    write_operation="PutPublicAccessBlock",
    write_actions=("s3:PutAccountPublicAccessBlock",),
    drift=turn_off,
    read=account_block,
    service="s3control",
    scope="account",
    create=the_account,
    request_parameters=account_request_parameters,
    remove=None,  # an account cannot be deleted between the event and the read
    tagged_bucket=None,  # an account has no tags
    denied_by_moto=False,  # see ControlCase: moto's S3 Control AccessDenied has no readable code
)


@pytest.mark.parametrize("setting", SETTINGS)
def test_one_setting_off_is_turned_back_on(setting: str) -> None:
    put_account_block(ACCOUNT, {**ALL_ON, setting: False})
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(ACCOUNT)

    assert outcome["status"] == "remediated", outcome
    assert outcome["scope"] == "account"
    assert outcome["bucket"] == ACCOUNT
    assert outcome["reason"] == f"Block Public Access off: {setting}"
    assert outcome["before"] == {**ALL_ON, setting: False}
    assert account_block(ACCOUNT) == ALL_ON
    assert outcome["after"] == ALL_ON
    # Read, write, verify through S3 Control; no bucket tags are read (nothing to exempt).
    assert calls_delta(before_calls) == {
        "s3control.GetPublicAccessBlock": 2,
        "s3control.PutPublicAccessBlock": 1,
    }


def test_deleted_configuration_is_put_back() -> None:
    put_account_block(ACCOUNT, ALL_ON)
    s3control().delete_public_access_block(AccountId=ACCOUNT)
    record = {"request_parameters": {"Host": s3_control_host()}}

    [outcome] = handle("DeleteAccountPublicAccessBlock", None, "public-access", **record)

    assert outcome["control"] == CASE.control
    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "no Block Public Access configuration"
    assert outcome["before"] is None
    assert account_block(ACCOUNT) == ALL_ON


def test_already_compliant_makes_no_write() -> None:
    put_account_block(ACCOUNT, ALL_ON)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(ACCOUNT)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "all four Block Public Access settings are on"
    assert calls_delta(before_calls) == {"s3control.GetPublicAccessBlock": 1}


def test_no_tag_exempts_the_account() -> None:
    """Exemptions are bucket tags; even `all` on every bucket leaves the account to its mode."""
    tag_bucket(
        make_bucket("tagged-bucket"),
        {"bucketwarden:exempt": "all", "bucketwarden:exempt-reason": "public website"},
    )
    CASE.drifted()
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(ACCOUNT)

    assert outcome["status"] == "remediated", outcome
    assert outcome["warnings"] == []
    assert "s3.GetBucketTagging" not in calls_delta(before_calls)


def test_notify_mode_is_how_an_account_keeps_settings_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CASE.mode_variable, "notify")
    CASE.drifted()
    outcome = CASE.run(ACCOUNT)
    assert outcome["status"] == "noncompliant", outcome
    assert account_block(ACCOUNT) == ALL_OFF


# -- which account an event names ---------------------------------------------------------------


def test_the_real_record_names_the_recipient_account() -> None:
    record = parse_record(load_sample("streamalert__PutAccountPublicAccessBlock__1.json"))
    # The caller's accountId is "12345" in this record: the recipient is the account changed.
    assert AccountPublicAccessBlock().subject(record) == "123456789123"


@pytest.mark.parametrize(
    "sample", ["PutAccountPublicAccessBlock.json", "DeleteAccountPublicAccessBlock.json"]
)
def test_sample_events_name_the_account(sample: str) -> None:
    record = parse_record(json.loads((EVENTS / sample).read_text()))
    assert AccountPublicAccessBlock().subject(record) == ACCOUNT


def test_without_a_recipient_the_callers_account_is_used() -> None:
    raw = cloudtrail_record("DeleteAccountPublicAccessBlock", None)
    del raw["recipientAccountId"]
    assert AccountPublicAccessBlock().subject(parse_record(raw)) == ACCOUNT


def test_an_event_without_an_account_is_ignored_with_a_reason() -> None:
    raw = cloudtrail_record(
        "PutAccountPublicAccessBlock",
        None,
        request_parameters={"Host": s3_control_host()},
    )
    raw["recipientAccountId"] = "..."  # redacted, as exported records often are
    raw["userIdentity"]["accountId"] = "..."
    before_calls = API_CALLS.snapshot()

    # A bare record: an EventBridge envelope would name the account it came from.
    outcomes = process(raw, CASE.family)

    assert [(o["status"], o["reason"]) for o in outcomes] == [
        ("ignored", "PutAccountPublicAccessBlock names no account")
    ]
    assert calls_delta(before_calls) == {}


# -- evaluate() and describe() are the bucket control's ------------------------------------------


@pytest.mark.parametrize("state", [None, {}, ALL_OFF, {**ALL_ON, "BlockPublicPolicy": False}])
def test_desired_state_is_all_four_on(state: dict[str, bool] | None) -> None:
    evaluation = AccountPublicAccessBlock().evaluate(state, Settings())
    assert not evaluation.compliant
    assert evaluation.desired == ALL_ON


def test_describe() -> None:
    assert AccountPublicAccessBlock().describe(ALL_OFF) == "all four off"
