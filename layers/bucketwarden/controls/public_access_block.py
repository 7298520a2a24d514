"""bucket-public-access-block: all four Block Public Access settings of the bucket are on.

A bucket without a configuration (deleted, or from before S3 turned it on for new buckets) is as
open as one with all four settings off, so it is drift too. The fix always writes all four: a
PutPublicAccessBlock replaces the whole configuration, and a setting it omits becomes false.
The account's Block Public Access (account_public_access_block.py) is judged and fixed by the
same code, through S3 Control.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import Control, Evaluation, State, without_metadata
from bucketwarden.settings import Settings

NOT_CONFIGURED = "NoSuchPublicAccessBlockConfiguration"
# S3's order (console and API reference): the two ACL settings, then the two policy settings.
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALL_ON = dict.fromkeys(SETTINGS, True)


def settings_off(state: State) -> list[str]:
    """The settings that are not on; a missing setting counts as off, as S3 treats it."""
    return [name for name in SETTINGS if (state or {}).get(name) is not True]


class PublicAccessBlockControl(Control):
    """Block Public Access of a bucket or of the account: four settings, judged and fixed alike.

    S3 (`Bucket=`) and S3 Control (`AccountId=`) name the calls, the answer and the "none yet"
    error the same way; only the parameter naming the subject differs.
    """

    subject_parameter = "Bucket"

    def read(self, client: Any, subject: str) -> State:
        try:
            response = client.get_public_access_block(**{self.subject_parameter: subject})
        except ClientError as error:
            if error_code(error) == NOT_CONFIGURED:
                return None
            raise
        return without_metadata(response).get("PublicAccessBlockConfiguration")

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        if state is None:
            return Evaluation(False, "no Block Public Access configuration", dict(ALL_ON))
        off = settings_off(state)
        if not off:
            return Evaluation(True, "all four Block Public Access settings are on")
        return Evaluation(False, f"Block Public Access off: {', '.join(off)}", dict(ALL_ON))

    def describe(self, state: State) -> str:
        if state is None:
            return "no configuration (all off)"
        off = settings_off(state)
        if not off:
            return "all four on"
        if len(off) == len(SETTINGS):
            return "all four off"
        return "off: " + ", ".join(off)

    def apply(self, client: Any, subject: str, desired: State) -> None:
        # The fix always writes all four; only a rollback to "no configuration" deletes it
        # (run with a person's credentials: the service's role has no Delete action).
        if desired is None:
            client.delete_public_access_block(**{self.subject_parameter: subject})
            return
        client.put_public_access_block(
            **{self.subject_parameter: subject}, PublicAccessBlockConfiguration=desired
        )


class BucketPublicAccessBlock(PublicAccessBlockControl):
    id = "bucket-public-access-block"
    fsbp = ("S3.8",)
    severity = "HIGH"
    family = "public-access"
    title = "Bucket Block Public Access is fully on"
    surface = "bucket Block Public Access configuration"
    trigger_events = (
        "CreateBucket",
        "PutBucketPublicAccessBlock",
        "DeleteBucketPublicAccessBlock",
    )
    read_actions = ("s3:GetBucketPublicAccessBlock",)
    write_actions = ("s3:PutBucketPublicAccessBlock",)
    closes_public_exposure = True
