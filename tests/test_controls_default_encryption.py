"""default-encryption: the baseline (SSE-S3, or SSE-KMS with an approved key and bucket key on)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden import aws
from bucketwarden.controls.default_encryption import DefaultEncryption
from bucketwarden.handler import process
from bucketwarden.settings import ConfigError, Settings
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    REGION,
    ControlCase,
    calls_delta,
    cloudtrail_record,
    make_bucket,
    own_client,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def stack_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account the stack guards, as template.yaml sets it: moto's, where the keys are."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)


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
    write_actions=("s3:PutEncryptionConfiguration",),
    # moto (5.2.6 and later) lets this PUT through whatever the IAM policy says: the refusal is
    # S3's own AccessDenied answer instead.
    denied_by_moto=False,
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
    before_calls = API_CALLS.snapshot()

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
    before_calls = API_CALLS.snapshot()

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
    before_calls = API_CALLS.snapshot()

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


# -- blocking SSE-C uploads (BLOCK_SSE_C) ------------------------------------------------------
#
# moto (5.2) accepts BlockedEncryptionTypes in PutBucketEncryption but never returns it from
# GetBucketEncryption, and it does not refuse SSE-C uploads either. So the read after the fix can
# never show the block: against moto the engine rightly reports `failed`. The tests below judge
# the desired state as pure code and check exactly what the engine asks S3 to write.

AES256_RULE = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
SSE_C_BLOCKED = {"BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}
BLOCKING = Settings(block_sse_c=True)


@pytest.fixture
def requested_encryption() -> list[dict[str, Any]]:
    """Every configuration the engine sends with PutBucketEncryption, as it sends it."""
    requests: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        requests.append(copy.deepcopy(params["ServerSideEncryptionConfiguration"]))

    # The engine's own cached client for the records' region (see handler: client("s3", region)).
    aws.client("s3", REGION).meta.events.register(
        "provide-client-params.s3.PutBucketEncryption", capture
    )
    return requests


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("false", False), ("true", True), (" TRUE ", True), ("False", False)],
)
def test_block_sse_c_setting(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"BLOCK_SSE_C": value}
    assert Settings.from_env((), env).block_sse_c is expected


def test_sse_c_not_blocked_is_drift_and_the_rest_of_the_rule_is_kept() -> None:
    control = DefaultEncryption()
    current = {**AES256_RULE, "BucketKeyEnabled": False}

    evaluation = control.evaluate({"Rules": [current]}, BLOCKING)

    assert not evaluation.compliant
    assert evaluation.reason == "SSE-C uploads are not blocked"
    assert evaluation.desired == {"Rules": [{**current, **SSE_C_BLOCKED}]}
    again = control.evaluate(evaluation.desired, BLOCKING)
    assert again.compliant
    assert again.reason == "default encryption is AES256, SSE-C blocked"
    assert control.describe(evaluation.desired) == "AES256, SSE-C blocked"
    assert control.describe({"Rules": [current]}) == "AES256"


def test_nothing_blocked_is_replaced_by_sse_c() -> None:
    nothing = {"BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}
    evaluation = DefaultEncryption().evaluate({"Rules": [{**AES256_RULE, **nothing}]}, BLOCKING)
    assert not evaluation.compliant
    assert evaluation.desired == {"Rules": [{**AES256_RULE, **SSE_C_BLOCKED}]}


@given(
    # "LATER-TYPE" stands for an encryption type S3 may add to the list in the future.
    st.lists(st.sampled_from(["NONE", "SSE-C", "LATER-TYPE"]), max_size=4, unique=True)
)
def test_desired_blocked_types_keep_others_and_drop_none(blocked: list[str]) -> None:
    current = {**AES256_RULE, "BlockedEncryptionTypes": {"EncryptionType": blocked}}
    evaluation = DefaultEncryption().evaluate({"Rules": [current]}, BLOCKING)
    if "SSE-C" in blocked:
        assert evaluation.compliant, evaluation
        return
    [desired] = evaluation.desired["Rules"]
    kinds = desired["BlockedEncryptionTypes"]["EncryptionType"]
    assert kinds == [kind for kind in blocked if kind != "NONE"] + ["SSE-C"]
    assert (
        desired["ApplyServerSideEncryptionByDefault"]
        == AES256_RULE["ApplyServerSideEncryptionByDefault"]
    )


def test_baseline_drift_and_sse_c_are_fixed_in_one_write() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = Settings(encryption_baseline="SSE-KMS", approved_kms_keys=(key,), block_sse_c=True)
    control = DefaultEncryption()

    evaluation = control.evaluate({"Rules": [AES256_RULE]}, settings)
    missing = control.evaluate(None, BLOCKING)

    assert evaluation.reason == (
        "default encryption is AES256, the baseline is SSE-KMS; SSE-C uploads are not blocked"
    )
    assert evaluation.desired == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": key,
                },
                "BucketKeyEnabled": True,
                **SSE_C_BLOCKED,
            }
        ]
    }
    assert control.evaluate(evaluation.desired, settings).compliant
    assert control.describe(evaluation.desired) == (
        "aws:kms key 1234abcd-12ab-34cd-56ef-1234567890ab, bucket key on, SSE-C blocked"
    )
    assert missing.reason == "no default encryption; SSE-C uploads are not blocked"
    assert missing.desired == {
        "Rules": [{**AES256_RULE, "BucketKeyEnabled": False, **SSE_C_BLOCKED}]
    }


def test_baseline_drift_keeps_an_existing_sse_c_block() -> None:
    evaluation = DefaultEncryption().evaluate({"Rules": [SSE_C_BLOCKED]}, BLOCKING)
    assert evaluation.reason == "no default encryption"
    assert evaluation.desired == {
        "Rules": [{**AES256_RULE, "BucketKeyEnabled": False, **SSE_C_BLOCKED}]
    }


@pytest.mark.parametrize("blocked", [[], ["NONE"], ["SSE-C"]], ids=["absent", "none", "sse-c"])
def test_blocked_types_are_never_touched_when_blocking_is_off(blocked: list[str]) -> None:
    control = DefaultEncryption()
    extra = {"BlockedEncryptionTypes": {"EncryptionType": blocked}} if blocked else {}
    assert control.evaluate({"Rules": [{**AES256_RULE, **extra}]}, Settings()).compliant
    # A baseline fix keeps whatever is there, including nothing.
    missing_default = control.evaluate({"Rules": [extra]} if extra else None, Settings())
    assert missing_default.desired == {
        "Rules": [{**extra, **AES256_RULE, "BucketKeyEnabled": False}]
    }


def test_engine_requests_the_sse_c_block_and_reports_what_s3_kept(
    monkeypatch: pytest.MonkeyPatch, requested_encryption: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("BLOCK_SSE_C", "true")
    bucket = make_bucket("sse-c-bucket")
    put_default(bucket, "AES256")
    before = encryption(bucket)

    outcome = CASE.run(bucket)

    assert requested_encryption == [
        {"Rules": [{**AES256_RULE, "BucketKeyEnabled": False, **SSE_C_BLOCKED}]}
    ]
    # moto drops BlockedEncryptionTypes (see above), so the verifying read finds no block and
    # the engine says so instead of claiming success. Against S3 this outcome is `remediated`.
    assert encryption(bucket) == before
    assert outcome["status"] == "failed", outcome
    assert outcome["reason"] == (
        "SSE-C uploads are not blocked; still wrong after the fix: SSE-C uploads are not blocked"
    )
    assert outcome["after"] == before


def test_engine_fixes_the_key_and_requests_the_block_in_one_write(
    monkeypatch: pytest.MonkeyPatch, requested_encryption: list[dict[str, Any]]
) -> None:
    key = kms_key()
    use_kms_baseline(monkeypatch, key["arn"])
    monkeypatch.setenv("BLOCK_SSE_C", "true")
    bucket = make_bucket("sse-c-kms-bucket")
    put_default(bucket, "AES256")
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    kms_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["arn"]}
    expected_rule = {"ApplyServerSideEncryptionByDefault": kms_default, "BucketKeyEnabled": True}
    assert requested_encryption == [{"Rules": [{**expected_rule, **SSE_C_BLOCKED}]}]
    assert calls_delta(before_calls)["s3.PutBucketEncryption"] == 1
    # The key and bucket key took effect; only the block is missing from moto's answer.
    assert rule(bucket) == expected_rule
    assert outcome["status"] == "failed", outcome
    assert outcome["reason"].endswith("still wrong after the fix: SSE-C uploads are not blocked")


def test_sse_c_not_blocked_in_notify_mode_is_reported_only(
    monkeypatch: pytest.MonkeyPatch, requested_encryption: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("BLOCK_SSE_C", "true")
    monkeypatch.setenv(CASE.mode_variable, "notify")
    bucket = make_bucket("sse-c-notify-bucket")
    put_default(bucket, "AES256")

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"] == "SSE-C uploads are not blocked"
    assert requested_encryption == []


def test_without_blocking_no_block_is_requested(
    requested_encryption: list[dict[str, Any]],
) -> None:
    bucket = CASE.drifted_bucket()
    assert CASE.run(bucket)["status"] == "remediated"
    assert requested_encryption == [{"Rules": [{**AES256_RULE, "BucketKeyEnabled": False}]}]


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
        ({"BLOCK_SSE_C": "yes"}, "BLOCK_SSE_C='yes': expected true or false"),
        ({"BLOCK_SSE_C": ""}, "BLOCK_SSE_C='': expected true or false"),
    ],
    ids=["kms-without-keys", "kms-blank-keys", "bad-baseline", "bad-mode", "bad-sse-c", "blank"],
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
