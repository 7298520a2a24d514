"""default-encryption: default encryption meets the configured baseline.

Baseline SSE-S3: any default encryption (SSE-S3, SSE-KMS, DSSE-KMS) is compliant; only a missing
configuration is drift, because SSE-KMS is stronger and must not be downgraded.
Baseline SSE-KMS: the default must use a key from the approved list with the S3 bucket key on.
A key that is already approved is kept; only the bucket key is switched on then.
With BLOCK_SSE_C on, the rule must also list SSE-C among its blocked encryption types, so that
nobody can upload objects encrypted with a key S3 never holds (a known ransomware technique).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import Control, Evaluation, State, without_metadata
from bucketwarden.settings import Settings

NOT_CONFIGURED = "ServerSideEncryptionConfigurationNotFoundError"
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
SSE_S3 = {"SSEAlgorithm": "AES256"}
SSE_C = "SSE-C"
# "NONE" in the blocked types means nothing is blocked, so it cannot stand beside SSE-C.
NOTHING_BLOCKED = "NONE"


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


def _blocked_types(rule: dict[str, Any]) -> list[str]:
    blocked = rule.get("BlockedEncryptionTypes") or {}
    return list(blocked.get("EncryptionType") or [])


def blocks_sse_c(rule: dict[str, Any]) -> bool:
    return SSE_C in _blocked_types(rule)


def _with_sse_c_blocked(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule with SSE-C added to its blocked types; other blocked types are kept."""
    kept = [kind for kind in _blocked_types(rule) if kind != NOTHING_BLOCKED]
    if SSE_C not in kept:
        kept.append(SSE_C)
    blocked = {**(rule.get("BlockedEncryptionTypes") or {}), "EncryptionType": kept}
    return {**rule, "BlockedEncryptionTypes": blocked}


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
        evaluation = self._evaluate_default(rule, settings)
        if not settings.block_sse_c:
            return evaluation  # blocked encryption types are left as they are
        return self._require_sse_c_blocked(rule, evaluation)

    @staticmethod
    def _require_sse_c_blocked(rule: dict[str, Any], evaluation: Evaluation) -> Evaluation:
        if evaluation.compliant and blocks_sse_c(rule):
            return replace(evaluation, reason=f"{evaluation.reason}, SSE-C blocked")
        if evaluation.compliant:
            # The default itself is right: keep it exactly and only add the block.
            desired = {"Rules": [_with_sse_c_blocked(rule)]}
            return Evaluation(False, "SSE-C uploads are not blocked", desired)
        reason = evaluation.reason
        if not blocks_sse_c(rule):
            reason += "; SSE-C uploads are not blocked"
        desired_rule = _default_rule(evaluation.desired)
        return replace(
            evaluation, reason=reason, desired={"Rules": [_with_sse_c_blocked(desired_rule)]}
        )

    def _evaluate_default(self, rule: dict[str, Any], settings: Settings) -> Evaluation:
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
        text = str(default.get("SSEAlgorithm")) if default else "no default encryption"
        if default.get("KMSMasterKeyID"):
            text += f" key {_key_id(str(default['KMSMasterKeyID']))}"
        if default.get("SSEAlgorithm") == "aws:kms":
            text += ", bucket key " + ("on" if rule.get("BucketKeyEnabled") else "off")
        if blocks_sse_c(rule):
            text += ", SSE-C blocked"
        return text

    def apply(self, s3: Any, bucket: str, desired: State) -> None:
        # The fix always puts a configuration; only a rollback to "none" deletes it (run with a
        # person's credentials: the service's role has no Delete action). S3 then applies SSE-S3.
        if desired is None:
            s3.delete_bucket_encryption(Bucket=bucket)
            return
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=desired)
