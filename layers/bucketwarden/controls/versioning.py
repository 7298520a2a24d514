"""versioning: bucket versioning is Enabled.

MFA delete can only be changed with the root user's MFA device, so a bucket whose versioning
cannot be changed without it is reported, not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from bucketwarden.controls.base import Control, Evaluation, RestoreTarget, State, without_metadata
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import VersioningConfigurationTypeDef

ENABLED = {"Status": "Enabled"}


class Versioning(Control["S3Client"]):
    id = "versioning"
    fsbp = ("S3.14",)
    severity = "LOW"
    family = "versioning"
    title = "Bucket versioning is enabled"
    surface = "versioning configuration"
    trigger_events = ("CreateBucket", "PutBucketVersioning")
    read_actions = ("s3:GetBucketVersioning",)
    write_actions = ("s3:PutBucketVersioning",)

    def read(self, s3: S3Client, bucket: str) -> State:
        return without_metadata(s3.get_bucket_versioning(Bucket=bucket))

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        status = (state or {}).get("Status")
        if status == "Enabled":
            return Evaluation(True, "versioning is Enabled")
        found = f"versioning is {status}" if status else "versioning was never enabled"
        if (state or {}).get("MFADelete") == "Enabled":
            return Evaluation(
                False,
                f"{found}; MFA delete is on, so only the root user with MFA can change it",
                fixable=False,
            )
        return Evaluation(False, found, dict(ENABLED))

    def describe(self, state: State) -> str:
        status = (state or {}).get("Status") or "never enabled"
        mfa = (state or {}).get("MFADelete")
        return f"{status}, MFA delete {mfa}" if mfa else status

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        configuration = cast("VersioningConfigurationTypeDef", desired)  # a State is S3's own
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=configuration)

    def restore_target(self, before: State) -> RestoreTarget:
        # Only the status is written: naming MFADelete at all needs the root user's MFA code.
        status = (before or {}).get("Status")
        if status:
            return RestoreTarget({"Status": status}, before)
        note = (
            "versioning was never enabled before the fix, and S3 cannot return a bucket to that "
            "state: it becomes Suspended, the closest (no new versions are kept)"
        )
        suspended = {"Status": "Suspended"}
        return RestoreTarget(suspended, {**(before or {}), **suspended}, note)
