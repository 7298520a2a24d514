"""Issue 12, rows 8, 9 and 10 through `bucketwarden local`: only its endpoint and its output.

- Row 8: default encryption set to SSE-KMS with another account's key is put back to SSE-S3.
- Row 9: a policy written in Japanese near S3's 20 KB limit is fixed and written back as UTF-8,
  under the limit (escaped, it would be refused, and the event dead-lettered with the public
  statement in place).
- Row 10: an account named beside "*" in one statement keeps its grant.

The stack stops cleanly at the end with nothing dead-lettered (see `running_stack`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bucketwarden.controls.bucket_policy import MAX_POLICY_BYTES
from bucketwarden.controls.public_access_block import ALL_ON
from tests.local_helpers import LocalStack, default_encryption, exempt, poll_until
from tests.test_local_e2e import running_stack, settled_bucket, user_outcome

FOREIGN = "999988887777"
FOREIGN_KEY = f"arn:aws:kms:us-east-1:{FOREIGN}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PARTNER_ROOT = "arn:aws:iam::444455556666:root"
TLS_SIDS = ["BucketWardenDenyInsecureTransport", "BucketWardenDenyOutdatedTls"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


def open_for_policies(stack: LocalStack, s3: Any, purpose: str) -> str:
    """A settled bucket whose own block lets a public policy in, as a person sets one up:
    exempted from bucket-public-access-block, BlockPublicPolicy off."""
    bucket = settled_bucket(stack, s3, purpose)
    exempt(s3, bucket, "bucket-public-access-block", "website served by its bucket policy")
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration={**ALL_ON, "BlockPublicPolicy": False}
    )
    poll_until(
        lambda: stack.outcomes(bucket=bucket, event_name="PutBucketPublicAccessBlock"),
        what=f"the relaxed block of {bucket} judged",
    )
    return bucket


def statement(bucket: str, sid: str, principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        **extra,
    }


def stored_policy(s3: Any, bucket: str) -> dict[str, Any]:
    return dict(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))


def sids(s3: Any, bucket: str) -> list[str]:
    return [s.get("Sid") for s in stored_policy(s3, bucket)["Statement"]]


# -- row 8 -------------------------------------------------------------------------------------


def test_a_kms_key_of_another_account_is_replaced_by_the_baseline(
    stack: LocalStack, s3: Any
) -> None:
    bucket = settled_bucket(stack, s3, "foreign-key")
    foreign = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": FOREIGN_KEY}

    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": foreign, "BucketKeyEnabled": True}]
        },
    )

    poll_until(
        lambda: (
            default_encryption(s3, bucket)["ApplyServerSideEncryptionByDefault"]
            == {"SSEAlgorithm": "AES256"}
        ),
        what=f"{bucket} back on SSE-S3",
    )
    outcome = user_outcome(stack, bucket, "PutBucketEncryption", "default-encryption")
    assert outcome["status"] == "remediated", outcome
    assert f"is in another account ({FOREIGN})" in outcome["reason"]


# -- row 9 -------------------------------------------------------------------------------------


def test_a_policy_in_japanese_is_fixed_and_keeps_its_bytes(stack: LocalStack, s3: Any) -> None:
    bucket = open_for_policies(stack, s3, "japanese")
    folders = [f"請求書/{n:04}/領収書と明細書の保管場所" for n in range(250)]
    partner = statement(
        bucket,
        "PartnerFolders",
        {"AWS": PARTNER_ROOT},
        Condition={"StringLike": {"s3:prefix": folders}},
    )
    document = {
        "Version": "2012-10-17",
        "Statement": [statement(bucket, "PublicRead", "*"), partner],
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # Under 20 KB as UTF-8, even with the TLS rules added; escaped it would be far over.
    assert len(text.encode()) + 1000 < MAX_POLICY_BYTES < len(json.dumps(document).encode())

    s3.put_bucket_policy(Bucket=bucket, Policy=text)

    poll_until(lambda: sids(s3, bucket) == ["PartnerFolders", *TLS_SIDS], what="policy fixed")
    written = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    assert "請求書" in written
    assert "\\u" not in written
    assert len(written.encode()) <= MAX_POLICY_BYTES
    assert stored_policy(s3, bucket)["Statement"][0] == partner
    fixed = user_outcome(stack, bucket, "PutBucketPolicy", "public-policy")
    assert fixed["status"] == "remediated", fixed
    assert user_outcome(stack, bucket, "PutBucketPolicy", "secure-transport")["status"] == (
        "remediated"
    )


# -- row 10 ------------------------------------------------------------------------------------


def test_an_account_named_beside_anyone_keeps_its_grant(stack: LocalStack, s3: Any) -> None:
    bucket = open_for_policies(stack, s3, "shared")
    shared = statement(bucket, "Shared", {"AWS": [PARTNER_ROOT, "*"]})

    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [shared]})
    )

    poll_until(lambda: sids(s3, bucket) == ["Shared", *TLS_SIDS], what="policy fixed")
    poll_until(
        lambda: stored_policy(s3, bucket)["Statement"][0]["Principal"] == {"AWS": [PARTNER_ROOT]},
        what="only the public principal removed",
    )
    outcome = user_outcome(stack, bucket, "PutBucketPolicy", "public-policy")
    assert outcome["status"] == "remediated", outcome
    assert f'It also names AWS "{PARTNER_ROOT}"' in outcome["reason"]
