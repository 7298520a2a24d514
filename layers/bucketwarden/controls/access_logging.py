"""access-logging: server access logs go to the configured target bucket, under the bucket's prefix.

Every bucket logs to LOG_TARGET_BUCKET under `<LOG_TARGET_PREFIX><bucket>/`, so one bucket's logs
sit under one prefix that people can find, grant and expire on their own. With no target
configured there is nothing to enforce, and nothing is read. The target bucket itself never logs
into itself (each delivery would be an access that is logged in turn).

The state is GetBucketLogging's answer plus the bucket's name ("Bucket"), because the prefix the
bucket must log under depends on it. The target bucket's policy is never touched: it must allow
logging.s3.amazonaws.com to write (docs/controls/access-logging.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from bucketwarden.controls.base import (
    Control,
    Evaluation,
    RecordReader,
    State,
    without_metadata,
)
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import BucketLoggingStatusTypeDef

NO_TARGET = "no log target configured (LOG_TARGET_BUCKET)"


def log_prefix(settings: Settings, bucket: str) -> str:
    """Where `bucket`'s logs go in the target: `<LOG_TARGET_PREFIX><bucket>/`."""
    prefix = settings.log_target_prefix
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{bucket}/"


def _logging(state: State) -> dict[str, Any]:
    return dict((state or {}).get("LoggingEnabled") or {})


class AccessLogging(Control["S3Client"]):
    id = "access-logging"
    fsbp = ("S3.9",)
    severity = "MEDIUM"
    family = "logging"
    title = "Server access logs go to the log target bucket"
    surface = "logging configuration"
    trigger_events = ("CreateBucket", "PutBucketLogging")
    read_actions = ("s3:GetBucketLogging",)
    write_actions = ("s3:PutBucketLogging",)

    def read(self, s3: S3Client, bucket: str) -> State:
        return {"Bucket": bucket, **without_metadata(s3.get_bucket_logging(Bucket=bucket))}

    def observe(
        self, s3: S3Client, bucket: str, settings: Settings, records: RecordReader | None = None
    ) -> State:
        # No target, no verdict to reach: spare the read (the engine reports this as compliant).
        if settings.log_target_bucket is None:
            return None
        return self.read(s3, bucket)

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        target = settings.log_target_bucket
        if target is None:
            return Evaluation(True, NO_TARGET)
        bucket = str((state or {}).get("Bucket"))
        if bucket == target:
            return Evaluation(True, f"{bucket} is the log target bucket; it does not log itself")
        expected = log_prefix(settings, bucket)
        current = _logging(state)
        if current.get("TargetBucket") == target and current.get("TargetPrefix") == expected:
            return Evaluation(True, f"access logs go to s3://{target}/{expected}")
        desired = {"Bucket": bucket, "LoggingEnabled": self._desired(current, target, expected)}
        return Evaluation(False, self._drift(current, target, expected), desired)

    @staticmethod
    def _drift(current: dict[str, Any], target: str, expected: str) -> str:
        if not current:
            return "server access logging is off"
        if current.get("TargetBucket") != target:
            return f"access logs go to bucket {current.get('TargetBucket')}, not {target}"
        return f"access logs go to prefix {current.get('TargetPrefix')!r}, not {expected!r}"

    @staticmethod
    def _desired(current: dict[str, Any], target: str, expected: str) -> dict[str, Any]:
        desired: dict[str, Any] = {"TargetBucket": target, "TargetPrefix": expected}
        # The key format is the team's choice of layout and stays.
        if current.get("TargetObjectKeyFormat"):
            desired["TargetObjectKeyFormat"] = current["TargetObjectKeyFormat"]
        # Grants already applied in the target are kept; grants made for another bucket are not
        # carried over, as they would open this bucket's logs in the target to their grantees.
        if current.get("TargetBucket") == target and current.get("TargetGrants"):
            desired["TargetGrants"] = current["TargetGrants"]
        return desired

    def describe(self, state: State) -> str:
        if state is None:
            return "not read"
        current = _logging(state)
        if not current:
            return "logging off"
        return f"logs to s3://{current.get('TargetBucket')}/{current.get('TargetPrefix', '')}"

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        # An empty status turns logging off (what a rollback to "logging off" writes).
        logging = _logging(desired)
        status = cast("BucketLoggingStatusTypeDef", {"LoggingEnabled": logging} if logging else {})
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
