"""object-level-logging: a trail logs S3 data events, write and read, for every bucket
(S3.22, S3.23). Detect only, account scope, run by the sweep (no event triggers it), so its
standard paths (drift, compliant, notify, off, access denied, throttling) run through the sweep
here; an account has no tags, so only its mode can keep it quiet.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws
from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.controls.base import CannotFix
from bucketwarden.controls.object_level_logging import logged_kinds
from bucketwarden.outcome import Outcome
from bucketwarden.settings import Mode, Settings
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    calls_delta,
    detect_only_on,
    make_bucket,
    own_client,
    sweeper,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    detect_only_on(monkeypatch)


CONTROL = "object-level-logging"
MODE_VARIABLE = "MODE_OBJECT_LEVEL_LOGGING"
ALL_BUCKETS = [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]


def trail(
    name: str, *, region: str = REGION, multi_region: bool = False, logging: bool = True
) -> str:
    cloudtrail = own_client_in("cloudtrail", region)
    target = make_bucket(f"{name}-logs")
    cloudtrail.create_trail(Name=name, S3BucketName=target, IsMultiRegionTrail=multi_region)
    if logging:
        cloudtrail.start_logging(Name=name)
    return name


def own_client_in(service: str, region: str) -> Any:
    return own_client(service) if region == REGION else aws.new_client(service, region_name=region)


def basic(name: str, read_write: str, resources: list[dict[str, Any]] | None = None) -> None:
    own_client("cloudtrail").put_event_selectors(
        TrailName=name,
        EventSelectors=[{"ReadWriteType": read_write, "DataResources": resources or ALL_BUCKETS}],
    )


def advanced(name: str, *extra: dict[str, Any]) -> None:
    fields = [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        *extra,
    ]
    own_client("cloudtrail").put_event_selectors(
        TrailName=name, AdvancedEventSelectors=[{"Name": "s3", "FieldSelectors": fields}]
    )


def sweep_account(settings: Settings | None = None, region: str = REGION) -> Outcome:
    """The control's outcome on the account, as the sweep makes it (its other controls off)."""
    found = sweeper(settings or Settings.from_env(CONTROL_IDS), (control(CONTROL),))
    (outcome,) = found.account_outcomes(region)
    return outcome


def test_no_trail_is_reported_in_notify_mode_by_default() -> None:
    before = API_CALLS.snapshot()

    outcome = sweep_account()

    assert (outcome.status.value, outcome.mode, outcome.scope) == (
        "noncompliant",
        "notify",
        "account",
    )
    assert outcome.bucket == ACCOUNT
    assert outcome.reason.startswith(
        "S3 object-level write events not logged; read events not logged; no trail in this region"
    )
    assert outcome.before == outcome.after == {"Trails": []}
    # The sweep asks STS which account it is in, then lists the trails: no trail, no more.
    assert calls_delta(before) == {"sts.GetCallerIdentity": 1, "cloudtrail.DescribeTrails": 1}


def test_a_trail_logging_every_buckets_data_events_is_compliant() -> None:
    basic(trail("org-trail"), "All")

    outcome = sweep_account()

    assert outcome.status.value == "compliant", outcome
    assert outcome.reason == (
        "S3 object-level write events logged by org-trail; read events logged by org-trail"
    )
    (found,) = outcome.before["Trails"]  # type: ignore[index]
    assert (found["Name"], found["IsLogging"]) == ("org-trail", True)


def test_write_only_is_s3_22_without_s3_23() -> None:
    basic(trail("writes"), "WriteOnly")

    outcome = sweep_account()

    assert outcome.status.value == "noncompliant"
    assert "write events logged by writes; read events not logged" in outcome.reason


def test_two_trails_together_cover_write_and_read() -> None:
    basic(trail("writes"), "WriteOnly")
    advanced(trail("reads"), {"Field": "readOnly", "Equals": ["true"]})

    outcome = sweep_account()

    assert outcome.status.value == "compliant", outcome.reason
    assert control(CONTROL).describe(outcome.before) == "write: writes; read: reads"


def test_advanced_selector_without_read_only_logs_both() -> None:
    advanced(trail("both"))
    assert sweep_account().status.value == "compliant"


def test_a_stopped_trail_logs_nothing() -> None:
    basic(trail("stopped", logging=False), "All")

    outcome = sweep_account()

    assert outcome.status.value == "noncompliant"
    assert "stopped trail(s): stopped" in outcome.reason


@pytest.mark.parametrize(
    "narrowing",
    [
        {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::one-bucket/"]},
        {"Field": "eventName", "Equals": ["PutObject"]},
    ],
    ids=["some-buckets", "some-calls"],
)
def test_a_narrower_advanced_selector_does_not_count(narrowing: dict[str, Any]) -> None:
    advanced(trail("narrow"), narrowing)
    assert sweep_account().status.value == "noncompliant"


def test_a_basic_selector_of_some_buckets_does_not_count() -> None:
    some = [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::one-bucket/"]}]
    basic(trail("narrow"), "All", some)
    assert sweep_account().status.value == "noncompliant"


def test_a_multi_region_trail_of_another_home_region_unresolved_counts_for_nothing() -> None:
    """moto lists another region's multi-region trail (includeShadowTrails) but answers its
    selectors with TrailNotFoundException there: kept as unreadable, not a failure."""
    trail("home", region="eu-west-1", multi_region=True)

    outcome = sweep_account()

    assert outcome.status.value == "noncompliant"
    (found,) = outcome.before["Trails"]  # type: ignore[index]
    assert found["Unreadable"] == "TrailNotFoundException"


def test_remediate_mode_still_only_reports() -> None:
    basic(trail("writes"), "WriteOnly")
    settings = Settings.from_env(CONTROL_IDS, {MODE_VARIABLE: "remediate"})
    before = API_CALLS.snapshot()

    outcome = sweep_account(settings)

    assert (outcome.status.value, outcome.mode) == ("noncompliant", "remediate")
    assert all(
        call.startswith("cloudtrail.Describe") or ".Get" in call for call in calls_delta(before)
    )


def test_off_mode_reads_nothing() -> None:
    settings = Settings.from_env(CONTROL_IDS, {MODE_VARIABLE: "off"})
    before = API_CALLS.snapshot()

    assert sweeper(settings, (control(CONTROL),)).account_outcomes(REGION) == []
    assert calls_delta(before) == {}


class JsonErrors:
    """CloudTrail's (JSON protocol) error answer to the first `times` requests of an operation."""

    def __init__(self, code: str, times: int) -> None:
        self.code, self.times, self.sent = code, times, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.sent > self.times:
            return None
        request.url = "https://refused.invalid/"
        body = json.dumps({"__type": self.code, "message": "injected"}).encode()
        return AWSResponse(request.url, 400, {}, MockRawResponse(body))


def test_access_denied_fails_the_check() -> None:
    """CloudTrail's AccessDeniedException (moto's own IAM enforcement answers CloudTrail in a
    shape botocore reads without a code, so the answer is CloudTrail's, given here)."""
    basic(trail("org-trail"), "All")
    refusal = JsonErrors("AccessDeniedException", times=1000)
    aws.client("cloudtrail", REGION).meta.events.register_first(
        "before-send.cloudtrail.GetEventSelectors", refusal
    )

    outcome = sweep_account()

    assert outcome.status.value == "failed"
    assert outcome.reason == (
        "AccessDeniedException on GetEventSelectors: BucketWarden's role may not do this"
    )
    assert refusal.sent == 1  # not retried


def test_throttled_read_is_retried() -> None:
    basic(trail("org-trail"), "All")
    throttle = JsonErrors("ThrottlingException", times=2)
    aws.client("cloudtrail", REGION).meta.events.register_first(
        "before-send.cloudtrail.GetEventSelectors", throttle
    )

    outcome = sweep_account()

    assert outcome.status.value == "compliant", outcome.reason
    assert throttle.sent == 3


def test_persistent_errors_fail_this_check_only() -> None:
    """The sweep goes on: a check whose calls keep failing is a failed outcome."""
    failing = JsonErrors("InternalFailure", times=1000)
    aws.client("cloudtrail", REGION).meta.events.register_first(
        "before-send.cloudtrail.DescribeTrails", failing
    )

    outcome = sweep_account()

    assert outcome.status.value == "failed"
    assert outcome.reason.startswith("not checked: InternalFailure on DescribeTrails")


def test_contract_detect_only_account_scope_no_trigger() -> None:
    found = control(CONTROL)
    assert (found.fixable, found.default_mode, found.scope, found.service) == (
        False,
        Mode.NOTIFY,
        "account",
        "cloudtrail",
    )
    assert found.trigger_events == ()
    assert found.subject_account(ACCOUNT) == ACCOUNT
    with pytest.raises(CannotFix, match="never turns them on"):
        found.apply(None, ACCOUNT, None)


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (
            {"EventSelectors": [{"ReadWriteType": "ReadOnly", "DataResources": ALL_BUCKETS}]},
            {"read"},
        ),
        (
            {
                "EventSelectors": [
                    {"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws-cn:s3:::"]}]}
                ]
            },
            {"read", "write"},
        ),
        ({"EventSelectors": [{"ReadWriteType": "All", "DataResources": []}]}, set()),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Data"]},
                            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                            {"Field": "readOnly", "Equals": ["false"]},
                        ]
                    }
                ]
            },
            {"write"},
        ),
        (
            {
                "AdvancedEventSelectors": [
                    {
                        "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Management"]},
                        ]
                    }
                ]
            },
            set(),
        ),
    ],
    ids=["read-only", "china-all-buckets", "no-resources", "advanced-write", "management-only"],
)
def test_logged_kinds(selectors: dict[str, Any], expected: set[str]) -> None:
    assert logged_kinds({"IsLogging": True, **selectors}) == expected
    assert logged_kinds({"IsLogging": False, **selectors}) == set()


def test_settings_for_a_member_account_name_it() -> None:
    """The sweep of a member account reports the account it judged."""
    settings = replace(Settings.from_env(CONTROL_IDS), account_id=ACCOUNT)
    assert sweep_account(settings).bucket == ACCOUNT
