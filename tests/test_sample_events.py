"""The sample events in events/: each is a real-shaped EventBridge event that the engine fixes.

They are what `sam local invoke -e` and `bucketwarden replay` are given, so each must parse,
name the bucket, match its file name, and drive every family that handles it to a fix (a
control that only reports, to its finding).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bucketwarden import aws, catalogue
from bucketwarden.aws import new_client
from bucketwarden.controls.base import Control
from bucketwarden.controls.public_access_block import SETTINGS as BLOCK_PUBLIC_ACCESS_SETTINGS
from bucketwarden.events import API_CALL_DETAIL_TYPE, parse_record
from bucketwarden.exemptions import CHANGE_CONTROL, CHANGE_EVENTS
from bucketwarden.handler import process
from bucketwarden.settings import Settings, mode_variable
from tests.conftest import EVENTS, s3_client
from tests.helpers import ALL_USERS, LOG_DELIVERY, acting, audit_store, create_table, tag_bucket
from tests.test_controls_access_logging import ENVIRONMENT as LOGGING_SETTINGS
from tests.test_controls_access_logging import log_bucket
from tests.test_controls_object_lock_retention import BASELINE as LOCK_BASELINE
from tests.test_controls_object_lock_retention import weaken
from tests.test_controls_object_ownership import put_grants
from tests.test_controls_public_acl import group
from tests.test_controls_replication_destination import replicate_out

BUCKET = "bucketwarden-demo-bucket"
EXEMPT = "bucketwarden:exempt"
ARN = f"arn:aws:s3:::{BUCKET}"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ACCESS_POINT = "bucketwarden-demo-ap"
# What the samples name: the bucket, the account (its Block Public Access), the access point.
SUBJECTS = {BUCKET, ACCOUNT, f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{ACCESS_POINT}"}
SAMPLES = sorted(EVENTS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def handled_by(event_name: str) -> list[str]:
    return [f for f in catalogue.FAMILIES if event_name in catalogue.trigger_events(f)]


# One case per (sample, family that handles its eventName); tagging calls change no surface
# (they are audited as exemption changes, below).
CASES = [
    (path, family)
    for path in SAMPLES
    if path.stem not in CHANGE_EVENTS
    for family in handled_by(path.stem)
]


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
    subjects = {c.subject(record) for c in catalogue.CONTROLS if path.stem in c.trigger_events}
    if path.stem in CHANGE_EVENTS:
        subjects = {record.bucket_name}
    assert subjects, path.stem
    assert subjects <= SUBJECTS
    assert record.errorCode is None
    assert uuid.UUID(record.eventID).version == 4


PUBLIC_READ = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
PARTNER_ACL_WRITES = {
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": ["s3:PutObject", "s3:PutObjectAcl"],
    "Resource": f"{ARN}/*",
}
MRAP = "bucketwarden-demo-mrap"


def make_drifted_bucket(controls: set[str]) -> None:
    """Every surface the controls judge wrong at once, as an incident would leave them."""
    s3 = s3_client()
    # A public grant rightly stops object-ownership (a person must decide): where public-acl
    # does not run first to remove it, the ACL grants S3 log delivery instead.
    public_acl = "public-acl" in controls or "object-ownership" not in controls
    s3.create_bucket(Bucket=BUCKET, ACL="public-read" if public_acl else "private")
    if "object-ownership" in controls:
        public = [group(ALL_USERS, "READ")] if public_acl else []
        put_grants(BUCKET, *public, group(LOG_DELIVERY, "WRITE"), group(LOG_DELIVERY, "READ_ACP"))
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    statements = [{**PUBLIC_READ, "Resource": f"{ARN}/*"}]
    if "cross-account-actions" in controls:
        statements.append(PARTNER_ACL_WRITES)
    policy = {"Version": "2012-10-17", "Statement": statements}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    s3control = new_client("s3control", region_name=REGION)
    all_off = dict.fromkeys(BLOCK_PUBLIC_ACCESS_SETTINGS, False)
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=all_off)
    # An access point's own Block Public Access is chosen at its creation.
    block = all_off if "access-point-public-access-block" in controls else {}
    s3control.create_access_point(
        AccountId=ACCOUNT, Name=ACCESS_POINT, Bucket=BUCKET, PublicAccessBlockConfiguration=block
    )
    if "multi-region-access-point-public-access-block" in controls:
        s3control.create_multi_region_access_point(
            AccountId=ACCOUNT,
            ClientToken="drifted",
            Details={"Name": MRAP, "PublicAccessBlock": all_off, "Regions": [{"Bucket": BUCKET}]},
        )
    access_point_policy = {"Version": "2012-10-17", "Statement": [PUBLIC_READ]}
    s3control.put_access_point_policy(
        AccountId=ACCOUNT, Name=ACCESS_POINT, Policy=json.dumps(access_point_policy)
    )
    if "access-logging" in controls:
        log_bucket()
    if "object-lock-retention" in controls:
        weaken(BUCKET)
    if "replication-destination" in controls:
        replicate_out(BUCKET)


# Settings without which a control has nothing to enforce (no log target, no baseline, no own
# account to tell other accounts from).
CONTROL_SETTINGS = {
    "access-logging": LOGGING_SETTINGS,
    "object-lock-retention": LOCK_BASELINE,
    "cross-account-actions": {"ACCOUNT_ID": ACCOUNT},
}


def detect_only(control: Control) -> bool:
    """A control that writes nothing: its drift is reported, never fixed."""
    return not control.write_actions


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(("path", "family"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_sample_drives_its_family_to_a_fix(
    path: Path, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = [
        c
        for c in catalogue.controls_of(family)
        if path.stem in c.trigger_events and c.fixable  # detect-only ones: off (conftest.py)
    ]
    for control in expected:
        # Remediate, whatever the control's default (controls added later notify by default).
        monkeypatch.setenv(mode_variable(control.id), "remediate")
        for name, value in CONTROL_SETTINGS.get(control.id, {}).items():
            monkeypatch.setenv(name, value)
    make_drifted_bucket({c.id for c in expected})

    outcomes = acting(process(load(path), family))

    # A control that only reports (no write action) finds the drift and leaves it.
    assert [(o["control"], o["status"]) for o in outcomes] == [
        (c.id, "noncompliant" if detect_only(c) else "remediated") for c in expected
    ]
    assert all(o["event_id"] == load(path)["detail"]["eventID"] for o in outcomes)
    # The fix is in S3, not only in the report: read it back.
    record = parse_record(load(path))
    settings = Settings.from_env(catalogue.CONTROL_IDS)
    for control in (c for c in expected if not detect_only(c)):
        subject = str(control.subject(record))
        records = audit_store(settings)
        state = control.observe(aws.client(control.service, REGION), subject, settings, records)
        assert control.evaluate(state, settings).compliant, control.id


@pytest.mark.usefixtures("aws")
def test_tagging_samples_audit_the_exemption_the_bucket_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table("bucketwarden-audit", "audit_id"))
    s3_client().create_bucket(Bucket=BUCKET)
    until = (date.today() + timedelta(days=30)).isoformat()
    # The bucket's tags, not the sample's request parameters, say what the exemption is.
    tag_bucket(
        BUCKET, {EXEMPT: "versioning", f"{EXEMPT}-reason": "archive", f"{EXEMPT}-until": until}
    )

    (granted,) = process(load(EVENTS / "PutBucketTagging.json"), "public-access")
    s3_client().delete_bucket_tagging(Bucket=BUCKET)
    (removed,) = process(load(EVENTS / "DeleteBucketTagging.json"), "public-access")

    assert (granted["control"], granted["status"]) == (CHANGE_CONTROL, "exempted")
    assert granted["after"]["controls"] == ["versioning"]
    assert granted["after"]["until"] == until
    assert (removed["control"], removed["status"]) == (CHANGE_CONTROL, "compliant")
    assert removed["before"] == granted["after"]
    assert removed["after"] is None
