"""Exemption tags: honoured only for the right control, with a reason, before their end date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.exemptions import check, read_tags
from bucketwarden.outcome import Outcome
from bucketwarden.settings import Settings
from bucketwarden.sweep import controls_for
from bucketwarden_tools.report import print_report
from tests.helpers import (
    API_CALLS,
    ErrorResponses,
    acting,
    calls_delta,
    handle,
    make_bucket,
    s3,
    sweeper,
    tag_bucket,
)

TODAY = date(2025, 3, 15)
SETTINGS = Settings()
KEY, REASON, UNTIL = (
    "bucketwarden:exempt",
    "bucketwarden:exempt-reason",
    "bucketwarden:exempt-until",
)


@pytest.mark.parametrize(
    "target", ["public-acl", "all", "ALL", " versioning , public-acl ", "public-acl,all"]
)
def test_exemption_with_reason_is_honoured(target: str) -> None:
    result = check({KEY: target, REASON: "static site"}, "public-acl", SETTINGS, TODAY)
    assert result.exempt
    # Without an end date it lapses MaxExemptionDays (365) after it was first recorded (today).
    assert result.note == (
        "exempt: static site (no end date: lapses on 2026-03-15, MaxExemptionDays (365) after "
        "it was first recorded)"
    )


@pytest.mark.parametrize("tags", [{}, {KEY: "versioning", REASON: "x"}, {KEY: "", REASON: "x"}])
def test_no_exemption_for_this_control(tags: dict[str, str]) -> None:
    result = check(tags, "public-acl", SETTINGS, TODAY)
    assert not result.exempt
    assert result.note is None


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_exemption_without_reason_is_not_honoured(reason: str | None) -> None:
    tags = {KEY: "all"} if reason is None else {KEY: "all", REASON: reason}
    result = check(tags, "versioning", SETTINGS, TODAY)
    assert not result.exempt
    assert result.note == f"exemption ignored: tag {REASON} is missing or empty"


@pytest.mark.parametrize(
    ("until", "exempt"),
    [
        (TODAY - timedelta(days=1), False),
        (TODAY, True),  # the end date is the last exempt day
        (TODAY + timedelta(days=30), True),
    ],
)
def test_end_date(until: date, exempt: bool) -> None:
    tags = {KEY: "all", REASON: "migration", UNTIL: until.isoformat()}
    result = check(tags, "versioning", SETTINGS, TODAY)
    assert result.exempt is exempt
    if exempt:
        assert result.note == f"exempt until {until.isoformat()}: migration"
    else:
        assert result.note == f"exemption expired on {until.isoformat()}"


def test_end_date_with_a_time_part_counts_by_day() -> None:
    tags = {KEY: "all", REASON: "migration", UNTIL: "2025-03-15T23:59:59Z"}
    assert check(tags, "versioning", SETTINGS, TODAY).exempt


@pytest.mark.parametrize("until", ["next week", "15/03/2025", "2025-13-01"])
def test_unreadable_end_date_is_not_honoured(until: str) -> None:
    tags = {KEY: "all", REASON: "migration", UNTIL: until}
    result = check(tags, "versioning", SETTINGS, TODAY)
    assert not result.exempt
    assert result.note is not None
    assert "is not a date" in result.note


def test_custom_tag_key() -> None:
    settings = Settings(exempt_tag_key="acme:skip")
    tags = {"acme:skip": "all", "acme:skip-reason": "lab"}
    assert check(tags, "versioning", settings, TODAY).exempt
    assert not check({KEY: "all", REASON: "lab"}, "versioning", settings, TODAY).exempt


TAG_VALUES = st.text(max_size=30)


@given(
    st.dictionaries(
        st.sampled_from([KEY, REASON, UNTIL, "owner"]), TAG_VALUES | st.dates().map(str)
    ),
    st.sampled_from(["public-acl", "default-encryption", "versioning"]),
)
def test_check_never_raises_and_honours_only_with_a_reason(
    tags: dict[str, str], control_id: str
) -> None:
    result = check(tags, control_id, SETTINGS, TODAY)
    if result.exempt:
        assert tags.get(REASON, "").strip()
        assert result.note
    elif KEY not in tags:
        assert result.note is None


@pytest.mark.usefixtures("aws")
def test_read_tags_of_a_bucket_with_and_without_tags() -> None:
    bucket = make_bucket("tagged-bucket")
    assert read_tags(s3(), bucket) == {}
    tag_bucket(bucket, {KEY: "all", REASON: "demo", "team": "data"})
    assert read_tags(s3(), bucket) == {KEY: "all", REASON: "demo", "team": "data"}


# -- exemptions that would not be honoured, on buckets that comply -----------------------------


def _swept(bucket: str, *controls: str) -> dict[str, Any]:
    """The versioning outcome of a sweep of `bucket` (read-only), with `controls` beside it."""
    found: list[Outcome] = []
    settings = replace(Settings.from_env(CONTROL_IDS), dry_run=True)
    ran = controls_for(["versioning", *controls])
    sweeper(settings, ran).run([bucket], on_outcomes=found.extend)
    [outcome] = [o.to_dict() for o in found if o.control == "versioning"]
    return outcome


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("tags", "note"),
    [
        ({KEY: "versioning"}, f"exemption ignored: tag {REASON} is missing or empty"),
        ({KEY: "all", REASON: "archive", UNTIL: "2020-01-31"}, "exemption expired on 2020-01-31"),
        ({KEY: "all", REASON: "archive", UNTIL: "soon"}, f"exemption ignored: {UNTIL}='soon'"),
    ],
    ids=["no reason", "expired", "not a date"],
)
def test_a_sweep_reports_an_exemption_that_would_not_be_honoured_on_a_compliant_bucket(
    tags: dict[str, str], note: str
) -> None:
    bucket = make_bucket("tagged-compliant")
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tag_bucket(bucket, tags)

    outcome = _swept(bucket)

    assert outcome["status"] == "compliant"
    assert [warning for warning in outcome["warnings"] if warning.startswith(note)], outcome


@pytest.mark.usefixtures("aws")
def test_a_sweep_says_nothing_of_an_exemption_that_holds_or_of_no_exemption() -> None:
    exempted = make_bucket("exempt-compliant")
    plain = make_bucket("plain-compliant")
    for bucket in (exempted, plain):
        s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tag_bucket(exempted, {KEY: "versioning", REASON: "archive"})

    assert _swept(exempted)["warnings"] == []
    assert _swept(plain)["warnings"] == []


@pytest.mark.usefixtures("aws")
def test_an_event_on_a_compliant_bucket_reads_no_tags() -> None:
    bucket = make_bucket("event-compliant")
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tag_bucket(bucket, {KEY: "versioning"})
    before = API_CALLS.snapshot()

    [outcome] = acting(handle("PutBucketVersioning", bucket, "versioning"))

    assert outcome["status"] == "compliant"
    assert outcome["warnings"] == []
    assert "s3.GetBucketTagging" not in calls_delta(before)


@pytest.mark.usefixtures("aws")
def test_the_terminal_report_lists_a_compliant_bucket_with_such_a_warning() -> None:
    bucket = make_bucket("tagged-for-the-table")
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tag_bucket(bucket, {KEY: "versioning"})
    console = Console(record=True, width=200)

    print_report([_swept(bucket)], console)

    printed = console.export_text()
    assert "no findings" not in printed
    assert bucket in printed
    assert f"warning: exemption ignored: tag {REASON} is missing or empty" in printed


@pytest.mark.usefixtures("aws")
def test_a_compliant_bucket_whose_tags_the_sweep_may_not_read_stays_compliant() -> None:
    bucket = make_bucket("tags-denied")
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # The other compliant checks of the bucket do not ask again.
    s3().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    refused = ErrorResponses(403, "AccessDenied", times=1000).install("GetBucketTagging")

    outcome = _swept(bucket, "default-encryption", "object-lock-retention")

    assert refused.sent == 1
    assert (outcome["status"], outcome["warnings"]) == ("compliant", [])
