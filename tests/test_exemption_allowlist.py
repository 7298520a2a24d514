"""The central exemption allowlist (an SSM parameter), and tags that arrive after CreateBucket."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from typing import Any

import pytest

from bucketwarden.exemptions import Allowlist, check_allowlist, parse_allowlist
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    calls_delta,
    handle,
    make_bucket,
    only,
    own_client,
    public_bucket,
    s3,
    tag_bucket,
)

PARAMETER = "/bucketwarden/exemptions"
SETTINGS = Settings(exemptions_parameter=PARAMETER)
TODAY = date(2026, 11, 27)


def allowlist(*entries: dict[str, Any]) -> Allowlist:
    return parse_allowlist(json.dumps({"exemptions": list(entries)}), PARAMETER)


SITE = {"buckets": "site-*", "controls": ["public-acl"], "reason": "static website SEC-142"}


# -- parsing and judging -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "control", "exempt"),
    [
        ("site-assets", "public-acl", True),
        ("site-assets", "versioning", False),
        ("my-site-assets", "public-acl", False),
        ("Site-assets", "public-acl", False),  # bucket names are lowercase; patterns match exactly
    ],
)
def test_an_entry_exempts_matching_buckets_for_its_controls(
    bucket: str, control: str, exempt: bool
) -> None:
    found = check_allowlist(allowlist(SITE), bucket, control, SETTINGS, TODAY)
    assert found.exempt is exempt
    if exempt:
        assert found.note.startswith(f"exempt by allowlist {PARAMETER} entry 1: static website")


def test_all_controls_and_several_patterns() -> None:
    entry = {"buckets": ["logs-*", "archive"], "controls": "all", "reason": "log sink"}
    for bucket in ("logs-eu", "archive"):
        assert check_allowlist(allowlist(entry), bucket, "versioning", SETTINGS, TODAY).exempt


def test_an_entry_without_a_reason_is_reported_and_not_honoured() -> None:
    entry = {**SITE, "reason": " "}
    found = check_allowlist(allowlist(entry), "site-a", "public-acl", SETTINGS, TODAY)
    assert not found.exempt
    assert found.note == f"exemption ignored: allowlist {PARAMETER} entry 1 has no reason"


def test_an_expired_entry_is_reported_and_not_honoured() -> None:
    expired = {**SITE, "until": "2026-11-26"}
    found = check_allowlist(allowlist(expired), "site-a", "public-acl", SETTINGS, TODAY)
    assert not found.exempt
    assert found.note == f"exemption by allowlist {PARAMETER} entry 1 expired on 2026-11-26"
    current = {**SITE, "until": "2026-11-27"}
    assert check_allowlist(allowlist(current), "site-a", "public-acl", SETTINGS, TODAY).exempt


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "Expecting property name"),
        ('{"exemptions": {}}', 'expected {"exemptions": [...]}'),
        ('{"exemptions": ["site-*"]}', "entry 1: expected an object"),
        ('{"exemptions": [{"buckets": [], "controls": "all"}]}', "entry 1: 'buckets' must be"),
        ('{"exemptions": [{"buckets": "a", "controls": 3}]}', "entry 1: 'controls' must be"),
    ],
)
def test_a_broken_allowlist_exempts_nothing_and_says_why(text: str, problem: str) -> None:
    broken = parse_allowlist(text, PARAMETER)
    assert broken.entries == ()
    assert broken.problem is not None
    assert broken.problem.startswith(f"exemption allowlist {PARAMETER} ignored: ")
    assert problem in broken.problem
    found = check_allowlist(broken, "site-a", "public-acl", SETTINGS, TODAY)
    assert (found.exempt, found.note) == (False, broken.problem)


# -- through the engine ------------------------------------------------------------------------


def put_allowlist(document: Any) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    own_client("ssm").put_parameter(Name=PARAMETER, Value=text, Type="String", Overwrite=True)


@pytest.fixture
def with_allowlist(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", PARAMETER)


@pytest.mark.usefixtures("with_allowlist")
def test_the_engine_honours_the_allowlist_and_reads_it_once() -> None:
    put_allowlist({"exemptions": [SITE]})
    first, second = public_bucket("site-one"), public_bucket("site-two")
    before = API_CALLS.snapshot()

    outcomes = [only(handle("PutBucketAcl", b, "public-access")) for b in (first, second)]

    assert [o["status"] for o in outcomes] == ["exempted", "exempted"]
    assert "exempt by allowlist /bucketwarden/exemptions entry 1" in outcomes[0]["reason"]
    # Warm invocations reuse the parameter (Powertools parameters, five minutes).
    assert calls_delta(before).get("ssm.GetParameter") == 1


@pytest.mark.usefixtures("with_allowlist")
def test_tags_are_read_first_and_an_unlisted_bucket_is_fixed() -> None:
    put_allowlist({"exemptions": [SITE]})
    bucket = public_bucket("shop-assets")
    outcome = only(handle("PutBucketAcl", bucket, "public-access"))
    assert outcome["status"] == "remediated"
    assert outcome["warnings"] == []


@pytest.mark.usefixtures("with_allowlist")
@pytest.mark.parametrize("document", ["{broken", None])
def test_a_broken_or_missing_allowlist_fixes_and_warns(document: str | None) -> None:
    if document is not None:
        put_allowlist(document)
    bucket = public_bucket("site-broken")
    outcome = only(handle("PutBucketAcl", bucket, "public-access"))
    assert outcome["status"] == "remediated"
    (warning,) = outcome["warnings"]
    assert warning.startswith(f"exemption allowlist {PARAMETER} ")


# -- tags that arrive after CreateBucket --------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_a_tag_set_seconds_after_create_bucket_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Infrastructure-as-code tags a new bucket in a call after CreateBucket; the baseline
    # delay lets that call land before the bucket is judged.
    monkeypatch.setenv("BASELINE_DELAY_SECONDS", "2")
    bucket = make_bucket("new-unversioned")
    tags = {"bucketwarden:exempt": "versioning", "bucketwarden:exempt-reason": "scratch data"}
    late = threading.Timer(0.5, tag_bucket, args=(bucket, tags))
    started = time.monotonic()
    late.start()
    try:
        outcome = only(handle("CreateBucket", bucket, "versioning"))
    finally:
        late.join()

    assert time.monotonic() - started >= 2
    assert outcome["status"] == "exempted"
    assert "Status" not in s3().get_bucket_versioning(Bucket=bucket)
