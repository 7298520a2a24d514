"""Directory buckets (S3 Express One Zone): their policy and encryption are judged, nothing else.

moto has no S3 Express endpoint: botocore sends a directory bucket's bucket-level calls to
`s3express-control.<region>.amazonaws.com`, which these tests send on to moto's S3 (a botocore
hook on every client), so moto keeps the bucket as it keeps any other. What the engine requests
is real; what is asserted is what it reads, writes and reports, and which calls it makes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from botocore.stub import Stubber

from bucketwarden import catalogue
from bucketwarden.aws import new_client, reset_clients
from bucketwarden.controls.cross_account_actions import DIRECTORY_RISKY_ACTIONS, S3EXPRESS_ACTIONS
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.events import EventRejected, as_eventbridge_event, parse_record
from bucketwarden.handler import process
from bucketwarden.reporter import DryRunReporter
from bucketwarden.settings import Settings
from bucketwarden.sweep import Sweep, list_bucket_regions, list_directory_buckets
from bucketwarden_tools.calls import API_CALLS, uncounted
from bucketwarden_tools.clients import register_for_new_clients
from bucketwarden_tools.routing import matching_routes
from tests.conftest import EVENTS
from tests.helpers import audit_store, calls_delta, create_table, own_client

BUCKET = "bucketwarden-demo--use1-az4--x-s3"
SAMPLES = EVENTS / "directory-buckets"
# The controls that judge directory buckets, by family.
DIRECTORY_CONTROLS = {
    "public-access": ["public-policy", "cross-account-actions"],
    "encryption": ["default-encryption"],
}
APPROVED_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PUBLIC_SESSIONS = {
    "Sid": "OpenSessions",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3express:CreateSession",
    "Resource": f"arn:aws:s3express:us-east-1:123456789012:bucket/{BUCKET}",
}
TEAM_SESSIONS = {
    **PUBLIC_SESSIONS,
    "Sid": "TeamSessions",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/Analytics"},
}


def to_moto_s3(request: Any, **_: Any) -> None:
    """S3 Express's regional control endpoint, answered by moto's S3 (path-style)."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    if host.startswith("s3express-control."):
        netloc = "s3." + host.removeprefix("s3express-control.")
        request.url = urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def s3(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    register_for_new_clients("before-sign.s3", to_moto_s3)  # the engine's clients
    reset_clients()
    monkeypatch.setenv("AUDIT_TABLE", create_table("bucketwarden-audit", "audit_id"))
    # The tests' own, made afresh: a client made before the hook was registered has none.
    client = uncounted(new_client("s3", region_name="us-east-1"))
    client.meta.events.register("before-sign.s3", to_moto_s3)
    return client


def load(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def policy(s3: Any) -> list[dict[str, Any]]:
    return json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]


def encryption(s3: Any) -> dict[str, Any]:
    found = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    return dict(found["Rules"][0])


# -- the events --------------------------------------------------------------------------------


SAMPLE_PATHS = sorted(SAMPLES.glob("*.json"))


def test_there_is_a_sample_for_every_event_name_of_a_directory_bucket_control() -> None:
    names = {
        name
        for control in catalogue.CONTROLS
        if control.directory_buckets
        for name in control.trigger_events
    }
    assert {path.stem for path in SAMPLE_PATHS} == names


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=lambda p: p.stem)
def test_a_sample_is_s3_express_calling_on_a_directory_bucket(path: Path) -> None:
    event = json.loads(path.read_text())
    record = parse_record(event)
    assert event["source"] == "aws.s3express"
    assert record.eventSource == "s3express.amazonaws.com"
    assert record.eventName == path.stem
    assert is_directory_bucket(record.bucket_name)
    # Delivered only by the rules of the families with a control that judges directory
    # buckets (and names the call): the others' rules do not match S3 Express.
    families = {route.folder for route in matching_routes(event, account_id="123456789012")}
    expected = {
        catalogue.FAMILIES[family]
        for family in DIRECTORY_CONTROLS
        if path.stem in catalogue.trigger_events(family)
    }
    assert families == expected


def test_an_envelope_must_deliver_its_own_sources_record() -> None:
    event = load("PutBucketPolicy")
    with pytest.raises(EventRejected, match="does not deliver eventSource"):
        parse_record({**event, "source": "aws.s3"})
    general = json.loads((EVENTS / "PutBucketPolicy.json").read_text())
    with pytest.raises(EventRejected, match="does not deliver eventSource"):
        parse_record({**general, "source": "aws.s3express"})
    with pytest.raises(EventRejected, match=r"is not aws\.s3 or aws\.s3express"):
        parse_record({**event, "source": "aws.s3-outposts"})


def test_s3_express_logs_only_directory_buckets() -> None:
    event = load("PutBucketPolicy")
    event["detail"]["requestParameters"]["bucketName"] = "bucketwarden-demo-bucket"
    with pytest.raises(EventRejected, match="is not a directory bucket"):
        parse_record(event)


def test_a_bare_s3_express_record_gets_its_own_envelope() -> None:
    record = load("PutBucketPolicy")["detail"]
    assert as_eventbridge_event(record)["source"] == "aws.s3express"
    general = json.loads((EVENTS / "PutBucketPolicy.json").read_text())["detail"]
    assert as_eventbridge_event(general)["source"] == "aws.s3"


# -- the engine --------------------------------------------------------------------------------


def test_a_public_directory_bucket_policy_loses_its_public_statement_only(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    document = {"Version": "2012-10-17", "Statement": [PUBLIC_SESSIONS, TEAM_SESSIONS]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))
    before = API_CALLS.snapshot()

    outcomes = process(load("PutBucketPolicy"), "public-access")

    assert [(o["control"], o["status"]) for o in outcomes] == [
        ("public-policy", "remediated"),
        ("cross-account-actions", "compliant"),
    ]
    assert policy(s3) == [TEAM_SESSIONS]
    # Neither tags (a directory bucket has no GetBucketTagging) nor a website are read.
    calls = calls_delta(before)
    assert "s3.GetBucketTagging" not in calls
    assert "s3.GetBucketWebsite" not in calls
    assert calls["s3.PutBucketPolicy"] == 1


def test_a_directory_bucket_policy_exempted_by_the_allowlist_is_reported_not_fixed(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowlist = {
        "exemptions": [
            {
                "buckets": [BUCKET],
                "controls": ["public-policy"],
                "reason": "public dataset",
                "until": "2099-01-01",
            }
        ]
    }
    ssm = own_client("ssm")
    ssm.put_parameter(Name="/bucketwarden/allowlist", Value=json.dumps(allowlist), Type="String")
    monkeypatch.setenv("EXEMPTIONS_PARAMETER", "/bucketwarden/allowlist")
    monkeypatch.setenv("MAX_EXEMPTION_DAYS", "36500")
    s3.create_bucket(Bucket=BUCKET)
    document = {"Version": "2012-10-17", "Statement": [PUBLIC_SESSIONS]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))

    outcomes = process(load("PutBucketPolicy"), "public-access")

    assert {o["control"]: o["status"] for o in outcomes} == {
        "public-policy": "exempted",
        "cross-account-actions": "compliant",
    }
    assert policy(s3) == [PUBLIC_SESSIONS]


PARTNER = "arn:aws:iam::111122223333:root"


def partner_grant(actions: Any) -> dict[str, Any]:
    """The directory bucket's policy granting another account `actions`."""
    return {
        **TEAM_SESSIONS,
        "Sid": "PartnerAdmin",
        "Principal": {"AWS": PARTNER},
        "Action": actions,
    }


def cross_account_outcome(s3: Any, *statements: dict[str, Any]) -> dict[str, Any]:
    s3.create_bucket(Bucket=BUCKET)
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))
    outcomes = process(load("PutBucketPolicy"), "public-access")
    [outcome] = [o for o in outcomes if o["control"] == "cross-account-actions"]
    return outcome


@pytest.fixture
def remediating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("MODE_CROSS_ACCOUNT_ACTIONS", "remediate")


@pytest.mark.usefixtures("remediating")
def test_another_accounts_policy_write_on_a_directory_bucket_is_removed(s3: Any) -> None:
    granted = partner_grant(["s3express:CreateSession", "s3express:PutBucketPolicy"])
    before = API_CALLS.snapshot()

    outcome = cross_account_outcome(s3, TEAM_SESSIONS, granted)

    assert outcome["status"] == "remediated", outcome["reason"]
    assert outcome["reason"] == (
        'statement "PartnerAdmin" allows account 111122223333 s3express:PutBucketPolicy'
    )
    assert policy(s3) == [TEAM_SESSIONS, {**granted, "Action": ["s3express:CreateSession"]}]
    assert "s3.GetBucketTagging" not in calls_delta(before)


@pytest.mark.usefixtures("remediating")
def test_s3_express_wildcard_for_another_account_becomes_its_actions_but_the_three(
    s3: Any,
) -> None:
    outcome = cross_account_outcome(s3, partner_grant("s3express:*"))

    assert outcome["status"] == "remediated", outcome["reason"]
    assert outcome["reason"] == (
        'statement "PartnerAdmin" allows account 111122223333 s3express:DeleteBucketPolicy, '
        "s3express:PutBucketPolicy, s3express:PutEncryptionConfiguration"
    )
    [narrowed] = policy(s3)
    assert narrowed["Action"] == [a for a in S3EXPRESS_ACTIONS if a not in DIRECTORY_RISKY_ACTIONS]
    assert "s3express:CreateSession" in narrowed["Action"]


@pytest.mark.usefixtures("remediating")
def test_the_own_accounts_policy_write_on_a_directory_bucket_stays(s3: Any) -> None:
    own = {**TEAM_SESSIONS, "Action": "s3express:*"}

    outcome = cross_account_outcome(s3, own)

    assert outcome["status"] == "compliant", outcome["reason"]
    assert policy(s3) == [own]


def test_a_directory_bucket_grant_to_another_account_is_reported_by_default(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNT_ID", "123456789012")
    granted = partner_grant("s3express:PutBucketPolicy")

    outcome = cross_account_outcome(s3, TEAM_SESSIONS, granted)

    assert (outcome["status"], outcome["mode"]) == ("noncompliant", "notify")
    assert policy(s3) == [TEAM_SESSIONS, granted]


def test_a_directory_bucket_gets_no_control_that_does_not_apply_to_it(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    before = API_CALLS.snapshot()

    # CreateBucket triggers Block Public Access, ACL, ownership and the TLS rule in this
    # family, versioning and logging in theirs: none of them exists for a directory bucket.
    for family in ("public-access", "versioning", "logging"):
        (outcome,) = process(load("CreateBucket"), family)
        assert outcome["status"] == "ignored"
        assert "is a directory bucket: no control" in outcome["reason"]
    assert calls_delta(before).keys() <= {"dynamodb.PutItem", "dynamodb.GetItem"}


def test_a_new_directory_bucket_gets_its_default_encryption(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)

    (outcome,) = process(load("CreateBucket"), "encryption")

    assert (outcome["control"], outcome["status"]) == ("default-encryption", "remediated")
    assert encryption(s3)["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_sse_kms_baseline_puts_an_approved_key_with_the_bucket_key_on(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_BASELINE", "SSE-KMS")
    monkeypatch.setenv("APPROVED_KMS_KEYS", f"alias/team-key,{APPROVED_KEY}")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )

    (outcome,) = process(load("PutBucketEncryption"), "encryption")

    assert outcome["status"] == "remediated", outcome["reason"]
    # A directory bucket takes a key by id or ARN, never an alias: the first such key.
    assert encryption(s3) == {
        "ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": APPROVED_KEY,
        },
        "BucketKeyEnabled": True,
    }


def test_no_approved_key_a_directory_bucket_can_take_is_reported(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_BASELINE", "SSE-KMS")
    monkeypatch.setenv("APPROVED_KMS_KEYS", "alias/team-key")
    s3.create_bucket(Bucket=BUCKET)

    (outcome,) = process(load("DeleteBucketEncryption"), "encryption")

    assert outcome["status"] == "noncompliant"
    assert "no approved key is named by id or ARN" in outcome["reason"]


def test_a_directory_buckets_kms_key_is_never_replaced(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its one customer managed key is for life: another account's key is reported, with
    the advice to re-create the bucket, and left as it is."""
    foreign = "arn:aws:kms:us-east-1:444455556666:key/8d3f1a2b-6c4e-4f7a-9b0d-e5c2a1f8b376"
    monkeypatch.setenv("ACCOUNT_ID", "123456789012")
    s3.create_bucket(Bucket=BUCKET)
    rule = {
        "ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": foreign,
        },
        "BucketKeyEnabled": True,
    }
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [rule]})

    (outcome,) = process(load("PutBucketEncryption"), "encryption")

    assert outcome["status"] == "noncompliant"
    assert "444455556666" in outcome["reason"]
    assert "re-create it" in outcome["reason"]
    assert encryption(s3) == rule


@pytest.mark.parametrize(
    ("rule", "compliant"),
    [
        ({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}, True),
        # The bucket key is always on in a directory bucket, whatever the read says.
        (
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": "1234abcd-12ab-34cd-56ef-1234567890ab",
                },
                "BucketKeyEnabled": False,
            },
            True,
        ),
        ({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}, False),
        ({}, False),
    ],
)
def test_directory_bucket_encryption_under_the_sse_s3_baseline_with_sse_c_blocking(
    rule: dict[str, Any], compliant: bool
) -> None:
    """No SSE-C in a directory bucket: BLOCK_SSE_C asks nothing of it."""
    settings = Settings.from_env(catalogue.CONTROL_IDS)
    settings = replace(settings, block_sse_c=True, account_id="123456789012")
    control = catalogue.control("default-encryption")
    state = {"Rules": [rule]} if rule else None
    verdict = control.evaluate_subject(BUCKET, state, settings)
    assert verdict.compliant is compliant, verdict.reason
    if not compliant:
        assert verdict.desired == {
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        }
    # The same state on a general purpose bucket must block SSE-C.
    assert not control.evaluate_subject("general-bucket", state, settings).compliant


# -- the sweep ---------------------------------------------------------------------------------


def test_the_sweep_lists_directory_buckets_page_by_page() -> None:
    s3 = new_client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_response(
            "list_directory_buckets",
            {"Buckets": [{"Name": "a--use1-az4--x-s3"}], "ContinuationToken": "page-2"},
            {},
        )
        stub.add_response(
            "list_directory_buckets",
            {"Buckets": [{"Name": "b--use1-az6--x-s3"}]},
            {"ContinuationToken": "page-2"},
        )
        found = list_directory_buckets(s3)
        stub.assert_no_pending_responses()
    assert found == {"a--use1-az4--x-s3": "us-east-1", "b--use1-az6--x-s3": "us-east-1"}


def test_a_refused_directory_listing_leaves_them_out_and_the_sweep_goes_on() -> None:
    s3 = new_client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("list_directory_buckets", "AccessDenied", http_status_code=403)
        assert list_directory_buckets(s3) == {}


def test_the_sweep_judges_a_directory_bucket_with_its_controls_only(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="general-bucket")
    document = {"Version": "2012-10-17", "Statement": [PUBLIC_SESSIONS]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))
    # moto answers the directory listing with every bucket: only directory names count.
    regions = list_bucket_regions(s3)
    assert regions[BUCKET] == "us-east-1"
    settings = Settings.from_env(catalogue.CONTROL_IDS)
    sweep = Sweep(settings, reporter=DryRunReporter(), store=audit_store(settings))

    outcomes = sweep.bucket_outcomes(BUCKET, regions[BUCKET])

    assert {o.control: o.status.value for o in outcomes} == {
        "public-policy": "remediated",
        "cross-account-actions": "compliant",
        "default-encryption": "remediated",
    }
    assert encryption(s3)["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    general = {o.control for o in sweep.bucket_outcomes("general-bucket", "us-east-1")}
    assert {"versioning", "public-acl", "secure-transport"} <= general
