"""The sample events in events/: each is a real-shaped EventBridge event that the engine fixes.

They are what `sam local invoke -e` and `bucketwarden replay` are given, so each must parse,
name the bucket, match its file name, and drive every family that handles it to a fix.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bucketwarden import catalogue
from bucketwarden.events import API_CALL_DETAIL_TYPE, parse_record
from bucketwarden.handler import process
from bucketwarden.settings import Settings
from tests.conftest import EVENTS, s3_client

BUCKET = "bucketwarden-demo-bucket"
SAMPLES = sorted(EVENTS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def handled_by(event_name: str) -> list[str]:
    return [f for f in catalogue.FAMILIES if event_name in catalogue.trigger_events(f)]


# One case per (sample, family that handles its eventName).
CASES = [(path, family) for path in SAMPLES for family in handled_by(path.stem)]


def test_there_is_a_sample_for_every_handled_event_name() -> None:
    handled = {name for family in catalogue.FAMILIES for name in catalogue.trigger_events(family)}
    assert {path.stem for path in SAMPLES} == handled


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_an_eventbridge_cloudtrail_event_for_the_demo_bucket(path: Path) -> None:
    event = load(path)
    assert event["detail-type"] == API_CALL_DETAIL_TYPE
    assert event["source"] == "aws.s3"
    assert event["account"] == event["detail"]["recipientAccountId"] == "123456789012"
    record = parse_record(event)
    assert record.eventName == path.stem
    assert record.bucket_name == BUCKET
    assert record.errorCode is None
    assert uuid.UUID(record.eventID).version == 4


def make_drifted_bucket() -> None:
    """Every surface wrong at once: public-read ACL, no default encryption, suspended versioning."""
    s3 = s3_client()
    s3.create_bucket(Bucket=BUCKET, ACL="public-read")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(("path", "family"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_sample_drives_its_family_to_a_fix(path: Path, family: str) -> None:
    make_drifted_bucket()
    expected = [c for c in catalogue.controls_of(family) if path.stem in c.trigger_events]

    outcomes = process(load(path), family)

    assert [(o["control"], o["status"]) for o in outcomes] == [
        (c.id, "remediated") for c in expected
    ]
    assert all(o["event_id"] == load(path)["detail"]["eventID"] for o in outcomes)
    # The fix is in the bucket, not only in the report: read it back from S3.
    for control in expected:
        assert control.evaluate(control.read(s3_client(), BUCKET), Settings()).compliant
