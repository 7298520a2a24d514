"""Issue 12, row 4: exemptions are governed.

An exemption tag cannot last forever (MaxExemptionDays), the central allowlist can be the only
source (ExemptionSource), tagging a bucket is an audited, notified change naming who made it,
and exempted drift is recorded for every event while its notifications are digested (at most one
a day per bucket and control).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bucketwarden import engine as engine_module
from bucketwarden import exemption_gate, notify
from bucketwarden import reporter as reporter_module
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.exemptions import CHANGE_CONTROL
from bucketwarden.outcome import Outcome
from bucketwarden.settings import ConfigError, ExemptionSource, Settings
from tests.helpers import (
    ACTOR,
    API_CALLS,
    audit_items,
    calls_delta,
    cloudtrail_record,
    create_table,
    denied,
    eventbridge_event,
    handle,
    is_public,
    make_bucket,
    only,
    own_client,
    public_bucket,
    s3,
    subscribe_inbox,
    tag_bucket,
)
from tests.test_template import environment, template

pytestmark = pytest.mark.usefixtures("aws")

AUDIT_TABLE = "bucketwarden-audit"
PARAMETER = "/bucketwarden/exemptions"
KEY, REASON, UNTIL = (
    "bucketwarden:exempt",
    "bucketwarden:exempt-reason",
    "bucketwarden:exempt-until",
)
FOREVER = {KEY: "all", REASON: "website", UNTIL: "9999-12-31"}


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.fixture
def audited(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))


def records_of(control: str) -> list[dict[str, Any]]:
    found = [item for item in audit_items(AUDIT_TABLE) if item.get("control") == control]
    return sorted(found, key=lambda item: item["recorded_at"])


def travel(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    """The clock of the engine, its exemption gate and its reporter (their decisions), `days`
    ahead; records keep their real times."""
    ahead = datetime.now(UTC) + timedelta(days=days)
    monkeypatch.setattr(engine_module, "utc_now", lambda: ahead)
    monkeypatch.setattr(exemption_gate, "utc_now", lambda: ahead)
    monkeypatch.setattr(reporter_module, "utc_now", lambda: ahead)


def as_subject(headline: str) -> str:
    """A headline as an SNS subject: cut at 100 characters (the message has it whole)."""
    return headline if len(headline) <= 100 else headline[:97] + "..."


def tagging(event_name: str, bucket: str, **record: Any) -> dict[str, Any]:
    return only(handle(event_name, bucket, "public-access", **record))


# -- MaxExemptionDays ----------------------------------------------------------------------------


def test_an_end_date_of_9999_12_31_is_not_honoured() -> None:
    bucket = public_bucket()
    tag_bucket(bucket, FOREVER)

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "remediated"
    assert not is_public(bucket)
    (warning,) = outcome["warnings"]
    assert f"{UNTIL}=9999-12-31 is more than MaxExemptionDays (365) away" in warning
    assert f"the latest end date honoured today is {in_days(365)}" in warning


@pytest.mark.parametrize(("limit", "until", "exempt"), [("30", 30, True), ("30", 31, False)])
def test_the_maximum_is_a_parameter(
    monkeypatch: pytest.MonkeyPatch, limit: str, until: int, exempt: bool
) -> None:
    monkeypatch.setenv("MAX_EXEMPTION_DAYS", limit)
    bucket = public_bucket()
    tag_bucket(bucket, {**FOREVER, UNTIL: in_days(until)})

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == ("exempted" if exempt else "remediated")


def test_no_limit_honours_any_end_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_EXEMPTION_DAYS", "0")
    bucket = public_bucket()
    tag_bucket(bucket, FOREVER)
    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "exempted"


@pytest.mark.usefixtures("audited")
def test_an_exemption_without_end_date_lapses_the_maximum_after_it_was_first_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = public_bucket()
    tag_bucket(bucket, {KEY: "public-acl", REASON: "website"})
    granted = tagging("PutBucketTagging", bucket)
    assert granted["status"] == "exempted"
    assert f"lapses on {in_days(365)}" in granted["reason"]

    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "exempted"
    travel(monkeypatch, 365)
    late = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-late"))

    assert late["status"] == "remediated"
    today = datetime.now(UTC).date().isoformat()
    assert any(f"first recorded on {today}" in warning for warning in late["warnings"])


@pytest.mark.usefixtures("audited")
def test_taking_the_tags_off_and_on_again_does_not_restart_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = public_bucket()
    tags = {KEY: "public-acl", REASON: "website"}
    tag_bucket(bucket, tags)
    tagging("PutBucketTagging", bucket, event_id="evt-grant")
    s3().delete_bucket_tagging(Bucket=bucket)
    travel(monkeypatch, 200)
    assert tagging("DeleteBucketTagging", bucket, event_id="evt-remove")["status"] == "compliant"
    travel(monkeypatch, 400)
    tag_bucket(bucket, tags)

    again = tagging("PutBucketTagging", bucket, event_id="evt-again")

    assert again["status"] == "noncompliant"
    assert "lapsed on" in again["reason"]


@pytest.mark.usefixtures("audited")
def test_a_grant_never_recorded_is_recorded_when_first_found_and_lapses_from_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    # Tagged while no tagging event reached BucketWarden (before it was deployed, say).
    tag_bucket(bucket, {KEY: "public-acl", REASON: "website"})

    first = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-1"))
    second = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-2"))

    assert (first["status"], second["status"]) == ("exempted", "exempted")
    (found,) = records_of(CHANGE_CONTROL)
    assert found["status"] == "exempted"
    assert found["after"]["controls"] == ["public-acl"]
    assert "actor" not in found  # who granted it is not known
    subjects = [message["Subject"] for message in inbox.receive()]
    assert f"BucketWarden: exemption found on bucket {bucket}" in subjects
    travel(monkeypatch, 366)
    assert only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-3"))["status"] == (
        "remediated"
    )


def test_without_an_audit_table_an_open_ended_exemption_counts_from_today() -> None:
    bucket = public_bucket()
    tag_bucket(bucket, {KEY: "public-acl", REASON: "website"})
    before = API_CALLS.snapshot()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "exempted"
    assert not any(call.startswith("dynamodb.") for call in calls_delta(before))


# -- ExemptionSource -----------------------------------------------------------------------------


def put_allowlist(*entries: dict[str, Any]) -> None:
    own_client("ssm").put_parameter(
        Name=PARAMETER, Value=json.dumps({"exemptions": list(entries)}), Type="String"
    )


def test_allowlist_only_ignores_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    monkeypatch.setenv("EXEMPTION_SOURCE", "allowlist")
    put_allowlist({"buckets": "listed-*", "controls": "all", "reason": "site", "until": in_days(9)})
    tagged, listed = public_bucket("tagged-site"), public_bucket("listed-site")
    tag_bucket(tagged, {**FOREVER, UNTIL: in_days(9)})

    fixed = only(handle("PutBucketAcl", tagged, "public-access"))
    exempted = only(handle("PutBucketAcl", listed, "public-access"))

    assert fixed["status"] == "remediated"
    assert fixed["warnings"] == [
        f"exemption ignored: tag {KEY} is not honoured because ExemptionSource is allowlist "
        "(only the central allowlist exempts)"
    ]
    assert exempted["status"] == "exempted"


def test_tags_only_ignores_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    monkeypatch.setenv("EXEMPTION_SOURCE", "tags")
    put_allowlist({"buckets": "*", "controls": "all", "reason": "everything"})
    bucket = public_bucket()
    before = API_CALLS.snapshot()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "remediated"
    assert "ssm.GetParameter" not in calls_delta(before)


def test_allowlist_entries_get_the_same_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    put_allowlist({"buckets": "*", "controls": "all", "reason": "x", "until": "9999-12-31"})
    bucket = public_bucket()

    outcome = only(handle("PutBucketAcl", bucket, "public-access"))

    assert outcome["status"] == "remediated"
    (warning,) = outcome["warnings"]
    assert f"allowlist {PARAMETER} entry 1 until=9999-12-31 is more than MaxExemptionDays" in (
        warning
    )


@pytest.mark.usefixtures("audited")
def test_an_open_ended_allowlist_entry_lapses_the_maximum_after_it_was_first_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)
    put_allowlist({"buckets": "*", "controls": "public-acl", "reason": "site"})
    bucket = public_bucket()

    assert only(handle("PutBucketAcl", bucket, "public-access"))["status"] == "exempted"
    (found,) = records_of(CHANGE_CONTROL)
    assert found["after"]["source"] == f"allowlist {PARAMETER} entry 1"
    travel(monkeypatch, 365)
    assert only(handle("PutBucketAcl", bucket, "public-access", event_id="e2"))["status"] == (
        "remediated"
    )


# -- tagging is an audited, notified change --------------------------------------------------------


@pytest.mark.usefixtures("audited")
def test_tagging_is_audited_and_notified_naming_the_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("site-bucket")
    tag_bucket(bucket, {"team": "web", **FOREVER})

    granted = tagging("PutBucketTagging", bucket, event_id="evt-grant")
    tag_bucket(bucket, {"team": "web", KEY: "public-acl", REASON: "site", UNTIL: in_days(30)})
    changed = tagging("PutBucketTagging", bucket, event_id="evt-change")
    s3().delete_bucket_tagging(Bucket=bucket)
    removed = tagging("DeleteBucketTagging", bucket, event_id="evt-remove")

    assert [o["status"] for o in (granted, changed, removed)] == [
        "noncompliant",  # asked for, not honoured: 9999-12-31 is beyond the maximum
        "exempted",
        "compliant",
    ]
    assert "not honoured" in granted["reason"]
    assert "MaxExemptionDays (365)" in granted["reason"]
    records = records_of(CHANGE_CONTROL)
    assert [r["status"] for r in records] == ["noncompliant", "exempted", "compliant"]
    assert {r["actor"] for r in records} == {ACTOR}
    assert records[1]["before"]["until"] == "9999-12-31"
    assert records[1]["after"] == {
        "grant": records[1]["after"]["grant"],
        "source": "tags",
        "controls": ["public-acl"],
        "reason": "site",
        "until": in_days(30),
    }
    assert records[2]["after"] is None
    messages = inbox.receive()
    assert [message["Subject"] for message in messages] == [
        as_subject(f"BucketWarden: exemption granted (not honoured) on bucket {bucket} by {ACTOR}"),
        as_subject(f"BucketWarden: exemption changed on bucket {bucket} by {ACTOR}"),
        as_subject(f"BucketWarden: exemption removed on bucket {bucket} by {ACTOR}"),
    ]
    assert {json.loads(message["Message"])["actor"] for message in messages} == {ACTOR}


@pytest.mark.usefixtures("audited")
def test_the_notification_says_who_what_why_until_and_whether_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("site-bucket")
    tag_bucket(bucket, FOREVER)

    tagging("PutBucketTagging", bucket)

    (message,) = inbox.receive()
    machine = json.loads(message["Message"])
    assert (machine["control"], machine["actor"]) == (CHANGE_CONTROL, ACTOR)
    email = notify.message(Outcome.from_dict(machine), Settings())["email"]
    assert f"Changed by: {ACTOR}" in email
    assert "Exemption now: all; reason 'website'; until 9999-12-31; by tags" in email
    assert "Honoured: no" in email
    assert "MaxExemptionDays (365)" in email
    chat = json.loads(notify.message(Outcome.from_dict(machine), Settings())["https"])
    assert ACTOR in chat["content"]["title"]


@pytest.mark.usefixtures("audited")
def test_a_tagging_call_that_leaves_the_exemption_alone_is_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("plain-bucket")
    tag_bucket(bucket, {"team": "web"})
    quiet = tagging("PutBucketTagging", bucket, event_id="evt-cost-tag")
    tag_bucket(bucket, {"team": "web", KEY: "versioning", REASON: "archive", UNTIL: in_days(9)})
    tagging("PutBucketTagging", bucket, event_id="evt-grant")
    inbox.receive()
    tag_bucket(bucket, {"team": "data", KEY: "versioning", REASON: "archive", UNTIL: in_days(9)})
    before = API_CALLS.snapshot()

    unchanged = tagging("PutBucketTagging", bucket, event_id="evt-team")

    assert (quiet["status"], unchanged["status"]) == ("ignored", "ignored")
    assert unchanged["reason"] == "the tagging call changed no exemption"
    assert inbox.receive() == []
    assert len(records_of(CHANGE_CONTROL)) == 1
    # One read of the tags, one of the bucket's exemption records and the check of the one
    # grant record's integrity tag: nothing written.
    assert calls_delta(before) == {
        "s3.GetBucketTagging": 1,
        "dynamodb.Query": 1,
        "kms.VerifyMac": 1,
    }


@pytest.mark.usefixtures("audited")
def test_the_tags_are_read_fresh_never_taken_from_the_request() -> None:
    bucket = make_bucket("plain-bucket")
    claimed = {
        "bucketName": bucket,
        "Tagging": {"TagSet": {"Tag": [{"Key": KEY, "Value": "all"}]}},
    }

    outcome = tagging("PutBucketTagging", bucket, request_parameters=claimed)

    assert outcome["status"] == "ignored"  # the bucket has no exemption tag
    assert records_of(CHANGE_CONTROL) == []


@pytest.mark.usefixtures("audited")
def test_a_tagging_call_by_a_bucketwarden_role_is_audited_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = "arn:aws:iam::123456789012:role/bucketwarden-public-access"
    monkeypatch.setenv("SERVICE_ROLE_ARNS", role)
    bucket = make_bucket("site-bucket")
    tag_bucket(bucket, {KEY: "all", REASON: "x", UNTIL: in_days(3)})

    outcome = tagging("PutBucketTagging", bucket, issuer_arn=role)

    assert outcome["status"] == "exempted"
    assert len(records_of(CHANGE_CONTROL)) == 1


@pytest.mark.usefixtures("audited")
def test_tags_that_may_not_be_read_are_a_failed_notified_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("site-bucket")
    with denied(monkeypatch, "s3:GetBucketTagging"):
        outcome = tagging("PutBucketTagging", bucket)

    assert outcome["status"] == "failed"
    assert "AccessDenied on GetBucketTagging" in outcome["reason"]
    (message,) = inbox.receive()
    assert (
        message["Subject"] == f"BucketWarden could not read the exemption tags of bucket {bucket}"
    )


def test_a_tagging_call_on_a_deleted_bucket_is_skipped() -> None:
    assert tagging("PutBucketTagging", "gone-bucket")["status"] == "skipped"


def test_a_failed_tagging_call_is_ignored() -> None:
    bucket = make_bucket("site-bucket")
    outcome = tagging("PutBucketTagging", bucket, error_code="AccessDenied")
    assert outcome["status"] == "ignored"


@pytest.mark.usefixtures("audited")
def test_a_tag_naming_unknown_controls_is_warned() -> None:
    bucket = make_bucket("site-bucket")
    tag_bucket(bucket, {KEY: "public-acl+public-website", REASON: "x", UNTIL: in_days(3)})
    outcome = tagging("PutBucketTagging", bucket)
    assert outcome["warnings"] == ["unknown control ids exempt nothing: public-website"]


# -- exempted drift: recorded per event, notified at most once a day -----------------------------


def exempted_bucket() -> str:
    bucket = public_bucket()
    tag_bucket(bucket, {KEY: "public-acl", REASON: "website", UNTIL: in_days(30)})
    return bucket


def drift(bucket: str, event_id: str) -> dict[str, Any]:
    return only(handle("PutBucketAcl", bucket, "public-access", event_id=event_id))


@pytest.mark.usefixtures("audited")
def test_repeated_exempted_drifts_are_each_recorded_and_notified_at_most_once_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = exempted_bucket()

    outcomes = [drift(bucket, f"evt-{n}") for n in range(3)]
    travel(monkeypatch, 1.05)
    next_day = drift(bucket, "evt-next-day")

    assert [o["status"] for o in (*outcomes, next_day)] == ["exempted"] * 4
    assert [o["notified"] for o in (*outcomes, next_day)] == [True, False, False, True]
    records = records_of("public-acl")
    assert len({r["audit_id"] for r in records}) == 4
    assert [r.get("notified", False) for r in records] == [True, False, False, True]
    assert len(inbox.receive()) == 2


@pytest.mark.usefixtures("audited")
def test_the_daily_notice_counts_the_drifts_of_the_day(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = exempted_bucket()
    drift(bucket, "evt-1")  # no topic yet: recorded, not notified
    drift(bucket, "evt-2")
    inbox = subscribe_inbox(monkeypatch)

    third = drift(bucket, "evt-3")

    assert third["notified"] is True
    assert any("3 times in the last 24 hours" in warning for warning in third["warnings"])
    (message,) = inbox.receive()
    assert "3 times in the last 24 hours" in message["Message"]


@pytest.mark.usefixtures("audited")
def test_a_retried_event_is_notified_again_not_silenced_by_its_own_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = exempted_bucket()

    first = drift(bucket, "evt-1")
    retried = drift(bucket, "evt-1")  # Lambda's retry after a publish that may have failed

    assert first["audit_id"] == retried["audit_id"]
    assert (first["notified"], retried["notified"]) == (True, True)
    assert len(inbox.receive()) == 2
    assert len(records_of("public-acl")) == 1


@pytest.mark.usefixtures("audited")
def test_each_control_of_a_bucket_has_its_own_daily_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    tag_bucket(bucket, {KEY: "all", REASON: "website", UNTIL: in_days(30)})
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})

    acl = drift(bucket, "evt-acl")
    versioning = only(handle("PutBucketVersioning", bucket, "versioning", event_id="evt-v"))

    assert (acl["notified"], versioning["notified"]) == (True, True)
    assert len(inbox.receive()) == 2


# -- settings and template ------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings.from_env(CONTROL_IDS, {})
    assert settings.exemption_source is ExemptionSource.BOTH
    assert settings.max_exemption_days == 365


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXEMPTION_SOURCE": "ssm"}, "EXEMPTION_SOURCE='ssm': expected one of tags, allowlist"),
        (
            {"EXEMPTION_SOURCE": "allowlist"},
            "EXEMPTION_SOURCE=allowlist needs EXEMPTIONS_PARAMETER",
        ),
        ({"MAX_EXEMPTION_DAYS": "-1"}, "MAX_EXEMPTION_DAYS='-1': expected a whole number"),
        ({"MAX_EXEMPTION_DAYS": "a year"}, "MAX_EXEMPTION_DAYS='a year': expected a whole number"),
        ({"MAX_EXEMPTION_DAYS": "36501"}, "from 0 to 36500"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env(CONTROL_IDS, env)


@pytest.mark.parametrize("source", ["TAGS", " allowlist ", "Both"])
def test_settings_accept_each_source(source: str) -> None:
    env = {"EXEMPTION_SOURCE": source, "EXEMPTIONS_PARAMETER": PARAMETER}
    assert Settings.from_env(CONTROL_IDS, env).exemption_source == source.strip().lower()


def test_template_parameters_reach_the_functions() -> None:
    parameters = template()["Parameters"]
    assert parameters["ExemptionSource"]["Default"] == "both"
    assert sorted(parameters["ExemptionSource"]["AllowedValues"]) == ["allowlist", "both", "tags"]
    assert parameters["MaxExemptionDays"]["Default"] == 365
    assert environment()["EXEMPTION_SOURCE"] == {"!Ref": "ExemptionSource"}
    assert environment()["MAX_EXEMPTION_DAYS"] == {"!Ref": "MaxExemptionDays"}
    rule = template()["Rules"]["AllowlistSourceNeedsParameter"]
    assert rule["RuleCondition"] == {"!Equals": [{"!Ref": "ExemptionSource"}, "allowlist"]}


def test_the_tagging_calls_reach_only_the_public_access_function() -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    matching = [
        logical_id
        for logical_id, resource in functions.items()
        for event in resource["Properties"].get("Events", {}).values()
        if "PutBucketTagging" in event["Properties"]["Pattern"]["detail"]["eventName"]
    ]
    assert matching == ["PublicAccessFunction"]


def test_an_eventbridge_tagging_event_is_routed_to_the_public_access_function() -> None:
    from bucketwarden_tools.routing import matching_routes

    event = eventbridge_event(cloudtrail_record("DeleteBucketTagging", "b"))
    assert [route.function_id for route in matching_routes(event)] == ["PublicAccessFunction"]
