"""default-encryption: default encryption meets the configured baseline.

Baseline SSE-S3: any default encryption (SSE-S3, SSE-KMS, DSSE-KMS) is compliant; only a missing
configuration is drift, because SSE-KMS is stronger and must not be downgraded.
Baseline SSE-KMS: the default must use a key from the approved list with the S3 bucket key on.
A key that is already approved is kept; only the bucket key is switched on then.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import Control, Evaluation, State, without_metadata
from bucketwarden.settings import Settings

NOT_CONFIGURED = "ServerSideEncryptionConfigurationNotFoundError"
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
SSE_S3 = {"SSEAlgorithm": "AES256"}


def _key_id(key: str) -> str:
    """The part of a key reference that identifies it: the key id or alias name."""
    if key.startswith("arn:") and ":" in key:
        key = key.split(":", 5)[-1]  # key/<id> or alias/<name>
    return key.removeprefix("key/")


def is_approved(key: str | None, approved: tuple[str, ...]) -> bool:
    return bool(key) and _key_id(str(key)) in {_key_id(a) for a in approved}


def _default_rule(state: State) -> dict[str, Any]:
    rules = (state or {}).get("Rules") or []
    return dict(rules[0]) if rules else {}


class DefaultEncryption(Control):
    id = "default-encryption"
    family = "encryption"
    title = "Default encryption meets the baseline"
    surface = "default encryption configuration"
    trigger_events = ("CreateBucket", "PutBucketEncryption", "DeleteBucketEncryption")
    read_actions = ("s3:GetEncryptionConfiguration",)
    write_actions = ("s3:PutEncryptionConfiguration",)

    def read(self, s3: Any, bucket: str) -> State:
        try:
            response = s3.get_bucket_encryption(Bucket=bucket)
        except ClientError as error:
            if error_code(error) == NOT_CONFIGURED:
                return None
            raise
        return without_metadata(response).get("ServerSideEncryptionConfiguration")

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        rule = _default_rule(state)
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = default.get("SSEAlgorithm")
        if settings.encryption_baseline == "SSE-S3":
            if algorithm:
                return Evaluation(True, f"default encryption is {algorithm}")
            return Evaluation(False, "no default encryption", self._desired(rule, SSE_S3))
        return self._evaluate_kms(rule, default, settings.approved_kms_keys)

    def _evaluate_kms(
        self, rule: dict[str, Any], default: dict[str, Any], approved: tuple[str, ...]
    ) -> Evaluation:
        algorithm = default.get("SSEAlgorithm")
        key = default.get("KMSMasterKeyID")
        kms_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": approved[0]}
        if not algorithm:
            return Evaluation(False, "no default encryption", self._desired(rule, kms_default))
        if algorithm not in KMS_ALGORITHMS:
            reason = f"default encryption is {algorithm}, the baseline is SSE-KMS"
            return Evaluation(False, reason, self._desired(rule, kms_default))
        if not is_approved(key, approved):
            reason = f"KMS key {key or 'aws/s3 (AWS managed)'} is not on the approved list"
            return Evaluation(False, reason, self._desired(rule, kms_default))
        # S3 bucket keys exist for SSE-KMS only; DSSE-KMS has none to switch on.
        if algorithm == "aws:kms" and not rule.get("BucketKeyEnabled"):
            return Evaluation(False, "S3 bucket key is off", self._desired(rule, default))
        return Evaluation(True, f"default encryption is {algorithm} with approved key {key}")

    @staticmethod
    def _desired(rule: dict[str, Any], default: dict[str, Any]) -> State:
        # Other fields of the rule (such as blocked encryption types) are kept as they are.
        desired_rule = {**rule, "ApplyServerSideEncryptionByDefault": dict(default)}
        desired_rule["BucketKeyEnabled"] = default.get("SSEAlgorithm") == "aws:kms"
        return {"Rules": [desired_rule]}

    def describe(self, state: State) -> str:
        rule = _default_rule(state)
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if not default:
            return "no default encryption"
        text = str(default.get("SSEAlgorithm"))
        if default.get("KMSMasterKeyID"):
            text += f" key {_key_id(str(default['KMSMasterKeyID']))}"
        if default.get("SSEAlgorithm") == "aws:kms":
            text += ", bucket key " + ("on" if rule.get("BucketKeyEnabled") else "off")
        return text

    def apply(self, s3: Any, bucket: str, desired: State) -> None:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=desired)
