"""Exemption tags: honoured only for the right control, with a reason, before their end date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden.exemptions import check, read_tags
from bucketwarden.settings import Settings
from tests.helpers import make_bucket, s3, tag_bucket

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
    assert result.note == "exempt: static site"


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
