"""public-policy: only the public statements are removed; service and cross-account ones stay.

The statements below are the ones real buckets carry (CloudFront origin access, load balancer and
CloudTrail log delivery, another account, the organisation); secure-transport and the property
test of the shared surface use them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bucketwarden.controls.public_policy import PublicPolicy
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    ControlCase,
    calls_delta,
    make_bucket,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")

POLICY_CASES = Path(__file__).parent / "data" / "policy-cases" / "aws-docs.jsonl"
OTHER_ACCOUNT = "111122223333"
ELB_ACCOUNT = "127311923021"  # Elastic Load Balancing's account in us-east-1
DISTRIBUTION = f"arn:aws:cloudfront::{OTHER_ACCOUNT}:distribution/EDFDVBD6EXAMPLE"
OAI = "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E15MNIMTCFKK4C"


# -- statements real buckets carry -------------------------------------------------------------


def objects(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}/*"


def public_read(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": objects(bucket),
    }


def public_write_over_tls(bucket: str) -> dict[str, Any]:
    """Public although it has a condition: TLS says how to call, not who."""
    return {
        "Sid": "AnyoneMayUpload",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["s3:PutObject"],
        "Resource": objects(bucket),
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }


def cloudfront_oac(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "CloudFrontOAC",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": objects(bucket),
        "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION}},
    }


def cloudfront_oai(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "CloudFrontOAI",
        "Effect": "Allow",
        "Principal": {"AWS": OAI},
        "Action": "s3:GetObject",
        "Resource": objects(bucket),
    }


def elb_logs(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "ELBLogs",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ELB_ACCOUNT}:root"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{OTHER_ACCOUNT}/*",
    }


def cloudtrail_write(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "AWSCloudTrailWrite",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{OTHER_ACCOUNT}/*",
        "Condition": {
            "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{OTHER_ACCOUNT}:trail/main",
            }
        },
    }


def cross_account(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "PartnerReads",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{OTHER_ACCOUNT}:root"]},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", objects(bucket)],
    }


def organisation(bucket: str) -> dict[str, Any]:
    """Principal "*" pinned by a fixed organisation id: not public."""
    return {
        "Sid": "Organisation",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": objects(bucket),
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
    }


KEPT_STATEMENTS = (cloudfront_oac, cloudfront_oai, elb_logs, cloudtrail_write, cross_account)


def policy(*statements: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", **top, "Statement": list(statements)}


def put_policy(bucket: str, document: dict[str, Any] | str) -> None:
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    s3().put_bucket_policy(Bucket=bucket, Policy=text)


def policy_state(bucket: str) -> dict[str, Any]:
    """The surface as the controls' state shows it, read by the test from moto."""
    try:
        document = json.loads(s3().get_bucket_policy(Bucket=bucket)["Policy"])
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise
        document = None
    return {"BucketArn": f"arn:aws:s3:::{bucket}", "Policy": document}


def stored_policy(bucket: str) -> Any:
    return policy_state(bucket)["Policy"]


def make_public(bucket: str) -> None:
    """A public statement between two that must stay (so the fix is a put, not a delete)."""
    put_policy(bucket, policy(cloudfront_oac(bucket), public_read(bucket), elb_logs(bucket)))


CASE = ControlCase(
    control="public-policy",
    family="public-access",
    event_name="PutBucketPolicy",
    write_operation="PutBucketPolicy",
    # moto maps PUT ?policy to s3:PutBucketPolicy, as AWS does.
    write_actions=("s3:PutBucketPolicy",),
    drift=make_public,
    read=policy_state,
)


def test_drift_fixed_removes_only_the_public_statements() -> None:
    bucket = make_bucket("mixed-bucket")
    kept = [statement(bucket) for statement in KEPT_STATEMENTS]
    drifted = policy(
        kept[0], public_read(bucket), *kept[1:3], public_write_over_tls(bucket), *kept[3:], Id="P1"
    )
    put_policy(bucket, drifted)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    # Every other statement, in its order, and the top-level keys stay as they were.
    assert stored_policy(bucket) == {"Version": "2012-10-17", "Id": "P1", "Statement": kept}
    assert outcome["before"] == {"BucketArn": "arn:aws:s3:::mixed-bucket", "Policy": drifted}
    assert outcome["after"] == policy_state(bucket)
    assert 'Statement "PublicRead" is public: it allows "*" (anyone)' in outcome["reason"]
    assert 'Statement "AnyoneMayUpload" is public: it allows AWS "*" (anyone)' in outcome["reason"]
    assert "aws:SecureTransport does not limit who can call" in outcome["reason"]
    assert "served through CloudFront (kept): CloudFrontOAC, CloudFrontOAI" in outcome["reason"]
    # Read, tags (exemption check), website (anyone could read objects), write, verify.
    assert calls_delta(before_calls) == {
        "s3.GetBucketPolicy": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3.GetBucketWebsite": 1,
        "s3.PutBucketPolicy": 1,
    }


def test_written_policy_is_compact_json() -> None:
    bucket = CASE.drifted_bucket()
    CASE.run(bucket)
    text = s3().get_bucket_policy(Bucket=bucket)["Policy"]
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


def test_already_compliant_makes_no_write() -> None:
    bucket = make_bucket("service-bucket")
    document = policy(*(s(bucket) for s in KEPT_STATEMENTS), organisation(bucket))
    put_policy(bucket, document)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == (
        "no public statement; served through CloudFront (kept): CloudFrontOAC, CloudFrontOAI"
    )
    assert calls_delta(before_calls) == {"s3.GetBucketPolicy": 1}
    assert stored_policy(bucket) == document


def test_no_policy_is_compliant() -> None:
    bucket = make_bucket("no-policy-bucket")
    outcome = CASE.run(bucket)
    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "no bucket policy"
    assert outcome["before"] == {"BucketArn": "arn:aws:s3:::no-policy-bucket", "Policy": None}


def test_policy_with_only_public_statements_is_deleted() -> None:
    bucket = make_bucket("wide-open-bucket")
    put_policy(bucket, policy(public_read(bucket), public_write_over_tls(bucket)))
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert stored_policy(bucket) is None
    assert outcome["after"]["Policy"] is None
    assert calls_delta(before_calls)["s3.DeleteBucketPolicy"] == 1
    assert "s3.PutBucketPolicy" not in calls_delta(before_calls)


def test_single_statement_object_that_is_public_is_deleted() -> None:
    bucket = make_bucket("single-statement-bucket")
    put_policy(bucket, {"Version": "2012-10-17", "Statement": public_read(bucket)})
    outcome = CASE.run(bucket)
    assert outcome["status"] == "remediated", outcome
    assert stored_policy(bucket) is None


def test_single_statement_object_that_is_not_public_is_compliant() -> None:
    bucket = make_bucket("single-statement-bucket")
    put_policy(bucket, {"Version": "2012-10-17", "Statement": cloudfront_oai(bucket)})
    outcome = CASE.run(bucket)
    assert outcome["status"] == "compliant", outcome
    assert "served through CloudFront (kept): CloudFrontOAI" in outcome["reason"]


def _aws_doc_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in POLICY_CASES.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    "case", _aws_doc_cases(), ids=lambda c: c["note"].split(":")[0].replace(" ", "-")
)
def test_user_guide_examples_beside_a_cloudtrail_statement(case: dict[str, Any]) -> None:
    """The S3 user guide's examples: the public ones go, the pinned one and CloudTrail stay."""
    bucket = make_bucket("guide-bucket")
    [example] = case["policy"]["Statement"]
    put_policy(bucket, policy(example, cloudtrail_write(bucket)))

    outcome = CASE.run(bucket)

    if case["expected_public"]:
        assert outcome["status"] == "remediated", outcome
        assert stored_policy(bucket)["Statement"] == [cloudtrail_write(bucket)]
        assert "Statement #1 is public" in outcome["reason"]
    else:
        assert outcome["status"] == "compliant", outcome
        assert stored_policy(bucket)["Statement"] == [example, cloudtrail_write(bucket)]


def test_public_read_policy_on_a_website_bucket_warns() -> None:
    bucket = CASE.drifted_bucket()
    s3().put_bucket_website(
        Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
    )
    outcome = CASE.run(bucket)
    assert outcome["status"] == "remediated", outcome
    assert any("static website" in warning for warning in outcome["warnings"])


def test_public_write_only_reads_no_website_configuration() -> None:
    bucket = make_bucket("upload-bucket")
    put_policy(bucket, policy(public_write_over_tls(bucket), elb_logs(bucket)))
    before_calls = API_CALLS.snapshot()
    assert CASE.run(bucket)["status"] == "remediated"
    assert "s3.GetBucketWebsite" not in calls_delta(before_calls)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "a policy is a JSON object, not list"),
        ('{"Version": "2012-10-17"}', "the document has no Statement"),
        ('{"Statement": [{"Effect": "Maybe"}]}', "Effect must be Allow or Deny"),
    ],
    ids=["not-json", "not-an-object", "no-statement", "bad-effect"],
)
def test_policy_that_cannot_be_judged_is_reported_not_changed(text: str, why: str) -> None:
    # S3 refuses such policies (MalformedPolicy); moto stores them, as an older or foreign
    # endpoint might: the control must report them, never crash or rewrite them.
    bucket = make_bucket("malformed-bucket")
    put_policy(bucket, text)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].startswith("the bucket policy cannot be judged: ")
    assert why in outcome["reason"]
    assert s3().get_bucket_policy(Bucket=bucket)["Policy"] == text
    assert "s3.PutBucketPolicy" not in calls_delta(before_calls)


def test_evaluate_judges_a_text_that_is_no_policy_as_unfixable() -> None:
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": "{not json"}
    evaluation = PublicPolicy().evaluate(state, Settings())
    assert (evaluation.compliant, evaluation.fixable, evaluation.desired) == (False, False, None)


def test_cloudfront_service_without_a_distribution_is_not_called_cloudfront() -> None:
    statement = {**cloudfront_oac("b"), "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": policy(statement)}
    assert PublicPolicy().evaluate(state, Settings()).reason == "no public statement"
