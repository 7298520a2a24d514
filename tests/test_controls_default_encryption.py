"""default-encryption: the baseline (SSE-S3, or SSE-KMS with an approved key and bucket key on)."""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden import aws
from bucketwarden.controls.default_encryption import DefaultEncryption
from bucketwarden.handler import process
from bucketwarden.settings import ConfigError, Settings
from tests.helpers import (
    ControlCase,
    calls_delta,
    check_exempted,
    check_exemption_not_honoured,
    cloudtrail_record,
    make_bucket,
    own_client,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")

NOT_CONFIGURED = "ServerSideEncryptionConfigurationNotFoundError"


def encryption(bucket: str) -> dict[str, Any] | None:
    try:
        response = s3().get_bucket_encryption(Bucket=bucket)
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == NOT_CONFIGURED:
            return None
        raise
    return response["ServerSideEncryptionConfiguration"]


def rule(bucket: str) -> dict[str, Any]:
    config = encryption(bucket)
    assert config is not None
    [only_rule] = config["Rules"]
    return only_rule


def put_default(
    bucket: str, algorithm: str, key: str | None = None, bucket_key: bool = False
) -> None:
    default: dict[str, str] = {"SSEAlgorithm": algorithm}
    if key:
        default["KMSMasterKeyID"] = key
    s3().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bucket_key}
            ]
        },
    )


def remove_encryption(bucket: str) -> None:
    s3().delete_bucket_encryption(Bucket=bucket)


def kms_key() -> dict[str, str]:
    """A KMS key in moto: its ARN and key id."""
    metadata = own_client("kms").create_key(Description="bucketwarden test")["KeyMetadata"]
    return {"arn": metadata["Arn"], "id": metadata["KeyId"]}


CASE = ControlCase(
    control="default-encryption",
    family="encryption",
    event_name="DeleteBucketEncryption",
    write_operation="PutBucketEncryption",
    # moto authorizes PUT ?encryption as s3:CreateBucket (its action map lacks "encryption").
    write_actions=("s3:PutEncryptionConfiguration", "s3:CreateBucket"),
    drift=remove_encryption,
    read=encryption,
)


def use_kms_baseline(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    monkeypatch.setenv("ENCRYPTION_BASELINE", "SSE-KMS")
    monkeypatch.setenv("APPROVED_KMS_KEYS", ",".join(keys))


# -- baseline SSE-S3 (the default) -------------------------------------------------------------


def test_missing_configuration_gets_sse_s3() -> None:
    bucket = CASE.drifted_bucket()
    assert encryption(bucket) is None
    before_calls = dict(aws.API_CALLS)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["before"] is None
    assert outcome["reason"] == "no default encryption"
    assert rule(bucket)["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert outcome["after"] == encryption(bucket)
    assert calls_delta(before_calls) == {
        "s3.GetBucketEncryption": 2,
        "s3.GetBucketTagging": 1,
        "s3.PutBucketEncryption": 1,
    }


@pytest.mark.parametrize("event_name", ["CreateBucket", "PutBucketEncryption"])
def test_other_trigger_events_are_handled(event_name: str) -> None:
    bucket = CASE.drifted_bucket()
    outcomes = process(cloudtrail_record(event_name, bucket), "encryption")
    assert [o["status"] for o in outcomes] == ["remediated"]


@pytest.mark.parametrize(
    ("algorithm", "with_key"), [("AES256", False), ("aws:kms", True), ("aws:kms", False)]
)
def test_sse_s3_baseline_accepts_any_default_and_never_downgrades(
    algorithm: str, with_key: bool
) -> None:
    bucket = make_bucket("encrypted-bucket")
    put_default(bucket, algorithm, kms_key()["arn"] if with_key else None)
    untouched = encryption(bucket)
    before_calls = dict(aws.API_CALLS)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert calls_delta(before_calls) == {"s3.GetBucketEncryption": 1}
    assert encryption(bucket) == untouched


# -- baseline SSE-KMS --------------------------------------------------------------------------


def test_kms_baseline_replaces_sse_s3_with_the_first_approved_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = kms_key(), kms_key()
    use_kms_baseline(monkeypatch, first["arn"], second["arn"])
    bucket = make_bucket("aes-bucket")
    put_default(bucket, "AES256")

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert "AES256" in outcome["reason"]
    fixed = rule(bucket)
    assert fixed["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": first["arn"],
    }
    assert fixed["BucketKeyEnabled"] is True


def test_kms_baseline_configures_a_bucket_without_encryption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = kms_key()
    use_kms_baseline(monkeypatch, key["arn"])
    bucket = CASE.drifted_bucket()

    assert CASE.run(bucket)["status"] == "remediated"
    assert rule(bucket)["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key["arn"]
    assert rule(bucket)["BucketKeyEnabled"] is True


def test_kms_baseline_replaces_an_unapproved_key(monkeypatch: pytest.MonkeyPatch) -> None:
    approved, rogue = kms_key(), kms_key()
    use_kms_baseline(monkeypatch, approved["arn"])
    bucket = make_bucket("rogue-key-bucket")
    put_default(bucket, "aws:kms", rogue["arn"], bucket_key=True)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert "not on the approved list" in outcome["reason"]
    assert rule(bucket)["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == approved["arn"]


def test_kms_baseline_replaces_the_aws_managed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    approved = kms_key()
    use_kms_baseline(monkeypatch, approved["arn"])
    bucket = make_bucket("managed-key-bucket")
    put_default(bucket, "aws:kms", bucket_key=True)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert "aws/s3" in outcome["reason"]
    assert rule(bucket)["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == approved["arn"]


@pytest.mark.parametrize(
    ("listed", "configured"), [("arn", "id"), ("id", "arn"), ("id", "id"), ("arn", "arn")]
)
def test_kms_baseline_matches_a_key_by_arn_or_id(
    monkeypatch: pytest.MonkeyPatch, listed: str, configured: str
) -> None:
    key = kms_key()
    use_kms_baseline(monkeypatch, key[listed])
    bucket = make_bucket("approved-key-bucket")
    put_default(bucket, "aws:kms", key[configured], bucket_key=True)
    before_calls = dict(aws.API_CALLS)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert calls_delta(before_calls) == {"s3.GetBucketEncryption": 1}


def test_kms_baseline_turns_the_bucket_key_on_and_keeps_an_approved_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = kms_key(), kms_key()
    use_kms_baseline(monkeypatch, first["arn"], second["arn"])
    bucket = make_bucket("no-bucket-key")
    put_default(bucket, "aws:kms", second["id"], bucket_key=False)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == "S3 bucket key is off"
    fixed = rule(bucket)
    # The approved key in use stays; only the bucket key changes.
    assert fixed["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": second["id"],
    }
    assert fixed["BucketKeyEnabled"] is True


def test_kms_evaluation_keeps_other_rule_fields_and_dsse() -> None:
    """Pure: a rule's other fields survive, and DSSE-KMS with an approved key is accepted."""
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = Settings(encryption_baseline="SSE-KMS", approved_kms_keys=(key,))
    control = DefaultEncryption()
    extra = {"BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}
    state = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, **extra}]}

    evaluation = control.evaluate(state, settings)

    assert not evaluation.compliant
    assert evaluation.desired == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": key,
                },
                "BucketKeyEnabled": True,
                **extra,
            }
        ]
    }
    assert control.evaluate(evaluation.desired, settings).compliant
    dsse = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms:dsse",
                    "KMSMasterKeyID": "1234abcd-12ab-34cd-56ef-1234567890ab",
                },
                "BucketKeyEnabled": True,
            }
        ]
    }
    assert control.evaluate(dsse, settings).compliant


# -- configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ENCRYPTION_BASELINE": "SSE-KMS"}, "needs at least one APPROVED_KMS_KEYS"),
        (
            {"ENCRYPTION_BASELINE": "SSE-KMS", "APPROVED_KMS_KEYS": " , "},
            "needs at least one APPROVED_KMS_KEYS",
        ),
        ({"ENCRYPTION_BASELINE": "SSE-C"}, "ENCRYPTION_BASELINE='SSE-C'"),
        ({"MODE_DEFAULT_ENCRYPTION": "sometimes"}, "MODE_DEFAULT_ENCRYPTION='sometimes'"),
    ],
    ids=["kms-without-keys", "kms-blank-keys", "bad-baseline", "bad-mode"],
)
def test_invalid_configuration_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    bucket = CASE.drifted_bucket()
    with pytest.raises(ConfigError, match=message):
        CASE.run(bucket)
    assert encryption(bucket) is None


# -- the checks every control passes -----------------------------------------------------------


def test_exempted_bucket_is_reported_not_changed() -> None:
    outcome = check_exempted(
        CASE,
        {
            "bucketwarden:exempt": "default-encryption",
            "bucketwarden:exempt-reason": "public dataset, no secrets",
        },
    )
    assert "public dataset, no secrets" in outcome["reason"]


@pytest.mark.parametrize(
    ("tags", "note"),
    [
        ({"bucketwarden:exempt": "all"}, "exempt-reason is missing"),
        (
            {
                "bucketwarden:exempt": "default-encryption",
                "bucketwarden:exempt-reason": "vendor bucket",
                "bucketwarden:exempt-until": "2001-02-03",
            },
            "expired on 2001-02-03",
        ),
    ],
    ids=["no-reason", "expired"],
)
def test_exemption_not_honoured(tags: dict[str, str], note: str) -> None:
    check_exemption_not_honoured(CASE, tags, note)
