"""lifecycle: the bucket has an enabled lifecycle rule, and a versioned bucket expires its
noncurrent versions (FSBP S3.13 and S3.10).

Detect only: how long data is kept is the data owner's decision, not BucketWarden's. The state
is the lifecycle configuration as S3 returns it (None when the bucket has none) plus the
bucket's versioning status (`VersioningStatus`, read from the versioning surface): a rule that
expires noncurrent versions matters only where there are any.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bucketwarden.controls.base import Evaluation, RecordReader, State
from bucketwarden.controls.detect_only import DetectOnly, configuration_or_none
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NO_CONFIGURATION = "NoSuchLifecycleConfiguration"
VERSIONING = "VersioningStatus"


def enabled_rules(state: State) -> list[dict[str, Any]]:
    return [rule for rule in (state or {}).get("Rules") or [] if rule.get("Status") == "Enabled"]


def _rule_name(rule: dict[str, Any]) -> str:
    return repr(rule.get("ID")) if rule.get("ID") else "(no ID)"


class Lifecycle(DetectOnly["S3Client"]):
    id = "lifecycle"
    fsbp = ("S3.10", "S3.13")
    severity = "LOW"
    family = "data-management"
    title = "Lifecycle rules expire data, and a versioned bucket's noncurrent versions"
    surface = "lifecycle configuration"
    trigger_events = ("PutBucketLifecycle", "DeleteBucketLifecycle")
    read_actions = ("s3:GetLifecycleConfiguration", "s3:GetBucketVersioning")
    derived_keys = (VERSIONING,)

    def read(self, s3: S3Client, bucket: str) -> State:
        return configuration_or_none(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), NO_CONFIGURATION
        )

    def observe(
        self, s3: S3Client, bucket: str, settings: Settings, records: RecordReader | None = None
    ) -> State:
        lifecycle = self.read(s3, bucket)
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        return {**(lifecycle or {}), VERSIONING: status}

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        rules = (state or {}).get("Rules") or []
        enabled = enabled_rules(state)
        if not enabled:
            found = f"all {len(rules)} lifecycle rules are disabled" if rules else None
            missing = found or "the bucket has no lifecycle configuration"
            return Evaluation(False, f"{missing}: nothing ever expires or moves", fixable=False)
        versioning = (state or {}).get(VERSIONING)
        expiring = [rule for rule in enabled if rule.get("NoncurrentVersionExpiration")]
        if versioning == "Enabled" and not expiring:
            reason = (
                "versioning is Enabled but no enabled lifecycle rule expires noncurrent versions "
                "(NoncurrentVersionExpiration): every overwritten or deleted object is kept forever"
            )
            return Evaluation(False, reason, fixable=False)
        names = ", ".join(_rule_name(rule) for rule in enabled)
        reason = f"{len(enabled)} enabled lifecycle rule(s): {names}"
        if expiring:
            reason += f"; noncurrent versions expire ({_rule_name(expiring[0])})"
        return Evaluation(True, reason)

    def describe(self, state: State) -> str:
        rules = (state or {}).get("Rules") or []
        if not rules:
            return "no lifecycle rules"
        enabled = enabled_rules(state)
        noncurrent = any(rule.get("NoncurrentVersionExpiration") for rule in enabled)
        expiry = ", noncurrent versions expire" if noncurrent else ""
        return f"{len(enabled)} of {len(rules)} lifecycle rules enabled{expiry}"
