"""mfa-delete: MFA delete is enabled on the bucket's versioning (FSBP S3.20). Detect only.

With MFA delete on, deleting an object version or changing the versioning state needs the root
user's MFA code: stolen credentials cannot wipe a bucket's history. Only the root user, with its
MFA device, can turn it on (PutBucketVersioning with `x-amz-mfa`), so BucketWarden reports a
bucket without it and never tries: `fixable` is False, every drift is noncompliant whatever the
mode, and `apply` is never called. It reads the surface the `versioning` control reads
(GetBucketVersioning, one read shared between them) and judges only its `MFADelete`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bucketwarden.controls.base import CannotFix, Control, Evaluation, State, without_metadata
from bucketwarden.controls.versioning import Versioning
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT_ONLY = (
    "only the root user, with its MFA device, can enable it (put-bucket-versioning "
    "--versioning-configuration Status=Enabled,MFADelete=Enabled --mfa ...): reported, not fixed"
)


class MfaDelete(Control["S3Client"]):
    id = "mfa-delete"
    fsbp = ("S3.20",)
    severity = "LOW"
    family = Versioning.family
    title = "MFA delete is enabled on versioned buckets"
    # The versioning control's surface: the engine reads it once for both, in one pass.
    surface = Versioning.surface
    trigger_events = ("PutBucketVersioning",)
    read_actions = Versioning.read_actions
    write_actions = ()
    default_mode = Mode.NOTIFY
    fixable = False

    def read(self, s3: S3Client, bucket: str) -> State:
        return without_metadata(s3.get_bucket_versioning(Bucket=bucket))

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        found = state or {}
        if found.get("MFADelete") == "Enabled":
            return Evaluation(True, "MFA delete is Enabled")
        status = found.get("Status")
        if status != "Enabled":
            versioning = f"versioning is {status}" if status else "versioning was never enabled"
            reason = f"MFA delete is off and {versioning} (MFA delete needs it)"
        else:
            reason = "MFA delete is off"
        return Evaluation(False, f"{reason}; {ROOT_ONLY}", fixable=False)

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        raise CannotFix(ROOT_ONLY)  # never asked: every verdict is unfixable

    def describe(self, state: State) -> str:
        return f"MFA delete {(state or {}).get('MFADelete') or 'Disabled'}"
