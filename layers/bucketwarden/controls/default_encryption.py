"""default-encryption: default encryption meets the configured baseline.

Baseline SSE-S3: SSE-S3, and SSE-KMS or DSSE-KMS with a key of the account, are compliant; a
missing configuration is drift. A key of the account is never downgraded: SSE-KMS is stronger.
Baseline SSE-KMS: the default must use a key from the approved list with the S3 bucket key on.
A key that is already approved is kept; only the bucket key is switched on then.

Under either baseline a KMS key is judged, because encrypting a bucket's new objects with a key
someone else controls is a known ransomware technique (the key's owner can revoke S3's use of
it): with `ApprovedKmsKeyArns` set, a key not on that list is drift; without it, a key in another
account is drift. Under SSE-S3 the fix then puts the first approved key (same algorithm), or SSE-S3
when there is no list: never weaker than a key of the account.
With BLOCK_SSE_C on, the rule must also list SSE-C among its blocked encryption types, so that
nobody can upload objects encrypted with a key S3 never holds (a known ransomware technique).

Directory buckets (S3 Express One Zone) have SSE-S3 and SSE-KMS only, with the S3 bucket key
always on for SSE-KMS, and no SSE-C at all (so nothing to block). An SSE-KMS directory bucket
keeps its one customer managed key for its lifetime: a key that is not approved (or, without a
list, another account's) is reported, never replaced (S3 would refuse), with the advice to
re-create the bucket. Their keys are named by id or ARN, never by alias.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import Control, Evaluation, RestoreTarget, State, without_metadata
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ServerSideEncryptionConfigurationTypeDef

NOT_CONFIGURED = "ServerSideEncryptionConfigurationNotFoundError"
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
SSE_S3 = {"SSEAlgorithm": "AES256"}
SSE_C = "SSE-C"
# "NONE" in the blocked types means nothing is blocked, so it cannot stand beside SSE-C.
NOTHING_BLOCKED = "NONE"
# What S3 reads back for a bucket without a default encryption configuration.
SSE_S3_DEFAULT: dict[str, Any] = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": dict(SSE_S3), "BucketKeyEnabled": False}]
}


def _key_id(key: str) -> str:
    """The part of a key reference that identifies it: the key id or alias name."""
    if key.startswith("arn:") and ":" in key:
        key = key.split(":", 5)[-1]  # key/<id> or alias/<name>
    return key.removeprefix("key/")


class KmsKey(NamedTuple):
    """A KMS key reference: `key/ID` or `alias/NAME`, and the account its ARN names (None for a
    bare id or alias, which S3 resolves in the bucket's own account)."""

    name: str
    account: str | None


def parse_key(reference: str) -> KmsKey:
    account: str | None = None
    resource = reference
    if reference.startswith("arn:"):
        parts = reference.split(":", 5)
        account, resource = (parts[4] or None, parts[5]) if len(parts) == 6 else (None, reference)
    if not resource.startswith("alias/"):
        resource = "key/" + resource.removeprefix("key/")
    return KmsKey(resource, account)


def same_key(key: KmsKey, approved: KmsKey, account: str | None) -> bool:
    """Does `key` name the `approved` key? `account`: the bucket's (None when unknown).

    A key id is made by AWS and unique, so it matches whatever account the ARNs give. An alias
    name is anyone's choice in their own account: "alias/backup" of another account is another
    key, so the accounts (a bare alias is the bucket's) must be the same, and known to be.
    """
    if key.name != approved.name:
        return False
    if key.name.startswith("key/"):
        return None in (key.account, approved.account) or key.account == approved.account
    return (key.account or account) == (approved.account or account)


def is_approved(key: str | None, approved: tuple[str, ...], account: str | None = None) -> bool:
    if not key:
        return False
    found = parse_key(str(key))
    return any(same_key(found, parse_key(listed), account) for listed in approved)


def foreign_account(key: str | None, account: str | None) -> str | None:
    """The account of a key that is not the bucket's: "" when that cannot be told (the account
    is unknown), None for a key of the account (a bare id or alias, the AWS managed key)."""
    owner = parse_key(str(key)).account if key else None
    if owner is None or owner == account:
        return None
    return owner if account else ""


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


def _unapproved(key: str | None, account: str | None) -> str:
    reason = f"KMS key {key or 'aws/s3 (AWS managed)'} is not on the approved list"
    owner = foreign_account(key, account)
    return f"{reason} (it is in another account, {owner})" if owner else reason


class DefaultEncryption(Control["S3Client"]):
    id = "default-encryption"
    fsbp = ("S3.17",)
    severity = "MEDIUM"
    family = "encryption"
    title = "Default encryption meets the baseline"
    surface = "default encryption configuration"
    trigger_events = ("CreateBucket", "PutBucketEncryption", "DeleteBucketEncryption")
    read_actions = ("s3:GetEncryptionConfiguration",)
    write_actions = ("s3:PutEncryptionConfiguration",)
    directory_buckets = True

    def read(self, s3: S3Client, bucket: str) -> State:
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

    def evaluate_subject(self, subject: str, state: State, settings: Settings) -> Evaluation:
        if not is_directory_bucket(subject):
            return self.evaluate(state, settings)
        return self._evaluate_directory(_default_rule(state), settings)

    def _evaluate_directory(self, rule: dict[str, Any], settings: Settings) -> Evaluation:
        """A directory bucket's default: SSE-S3 or SSE-KMS, its one key never replaced."""
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = default.get("SSEAlgorithm")
        if algorithm == "aws:kms":
            return self._judge_directory_key(default.get("KMSMasterKeyID"), settings)
        if algorithm == "AES256" and settings.encryption_baseline == "SSE-S3":
            return Evaluation(True, "default encryption is AES256")
        found = f"default encryption is {algorithm}" if algorithm else "no default encryption"
        if settings.encryption_baseline == "SSE-S3":
            return Evaluation(
                False, found, {"Rules": [{"ApplyServerSideEncryptionByDefault": SSE_S3}]}
            )
        key = next(
            (k for k in settings.approved_kms_keys if parse_key(k).name.startswith("key/")), None
        )
        reason = f"{found}, the baseline is SSE-KMS"
        if key is None:
            why = "no approved key is named by id or ARN, as a directory bucket requires"
            return Evaluation(False, f"{reason} ({why})", fixable=False)
        kms = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
        desired = {"Rules": [{"ApplyServerSideEncryptionByDefault": kms, "BucketKeyEnabled": True}]}
        return Evaluation(False, reason, desired)

    @staticmethod
    def _judge_directory_key(key: str | None, settings: Settings) -> Evaluation:
        approved, account = settings.approved_kms_keys, settings.account_id
        if is_approved(key, approved, account) or (
            not approved and foreign_account(key, account) is None
        ):
            whose = "approved key" if approved else "a key of the account,"
            return Evaluation(True, f"default encryption is aws:kms with {whose} {key}")
        if approved:
            reason = _unapproved(key, account)
        else:
            owner = foreign_account(key, account) or "unknown: ACCOUNT_ID is not set"
            reason = f"KMS key {key} is not a key of the account ({owner})"
        advice = "a directory bucket keeps its KMS key for life: re-create it with an approved key"
        return Evaluation(False, f"{reason}; {advice}", fixable=False)

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
            if not algorithm:
                return Evaluation(False, "no default encryption", self._desired(rule, SSE_S3))
            if algorithm in KMS_ALGORITHMS:
                return self._judge_key_under_sse_s3(rule, default, settings)
            return Evaluation(True, f"default encryption is {algorithm}")
        return self._evaluate_kms(rule, default, settings)

    def _judge_key_under_sse_s3(
        self, rule: dict[str, Any], default: dict[str, Any], settings: Settings
    ) -> Evaluation:
        algorithm, key = default["SSEAlgorithm"], default.get("KMSMasterKeyID")
        approved = settings.approved_kms_keys
        if approved:
            if is_approved(key, approved, settings.account_id):
                found = f"default encryption is {algorithm} with approved key {key}"
                return Evaluation(True, found)
            # Another approved key with the same algorithm: never weaker than what was there.
            swap = {"SSEAlgorithm": algorithm, "KMSMasterKeyID": approved[0]}
            reason = _unapproved(key, settings.account_id)
            return Evaluation(False, reason, self._desired(rule, swap))
        owner = foreign_account(key, settings.account_id)
        if owner is None:
            return Evaluation(True, f"default encryption is {algorithm} with a key of the account")
        if not owner:
            # Judged foreign, the fix would replace a key that may well be the account's own.
            reason = (
                f"KMS key {key} is not a key of a known account: ACCOUNT_ID is not set, so it is "
                "reported, not replaced"
            )
            return Evaluation(False, reason, fixable=False)
        reason = f"KMS key {key} is in another account ({owner}), not {settings.account_id}"
        return Evaluation(False, reason, self._desired(rule, SSE_S3))

    def _evaluate_kms(
        self, rule: dict[str, Any], default: dict[str, Any], settings: Settings
    ) -> Evaluation:
        approved = settings.approved_kms_keys
        algorithm = default.get("SSEAlgorithm")
        key = default.get("KMSMasterKeyID")
        kms_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": approved[0]}
        if not algorithm:
            return Evaluation(False, "no default encryption", self._desired(rule, kms_default))
        if algorithm not in KMS_ALGORITHMS:
            reason = f"default encryption is {algorithm}, the baseline is SSE-KMS"
            return Evaluation(False, reason, self._desired(rule, kms_default))
        if not is_approved(key, approved, settings.account_id):
            reason = _unapproved(key, settings.account_id)
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

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        # The fix always puts a configuration; only a rollback to "none" deletes it (run with a
        # person's credentials: the service's role has no Delete action). S3 then applies SSE-S3.
        if desired is None:
            s3.delete_bucket_encryption(Bucket=bucket)
            return
        configuration = cast("ServerSideEncryptionConfigurationTypeDef", desired)  # S3's own
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=configuration)

    def restore_target(self, before: State) -> RestoreTarget:
        if before is not None:
            return super().restore_target(before)
        note = "S3 applies SSE-S3 to a bucket without a default encryption configuration"
        return RestoreTarget(None, None, note, equivalents=(SSE_S3_DEFAULT,))
