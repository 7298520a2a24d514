"""access-point-public-access-block: every access point blocks public access itself.

FSBP S3.19: an access point's own Block Public Access (four settings, as a bucket's) is set when
it is created and can never be changed afterwards, so this control only reports (`fixable=False`):
the finding names the settings that are off and says to re-create the access point with all four
on. Whatever its network origin: a VPC access point's settings are judged too, as AWS Config does.

The subject and the exemption are access-point's (controls/access_point.py): the access point's
ARN, and the tags of the bucket it serves. The state is what GetAccessPoint says:
{"Name", "Bucket", "BucketAccountId", "NetworkOrigin", "PublicAccessBlockConfiguration"}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bucketwarden.controls.access_point import AccessPointControl, access_point, parse_arn
from bucketwarden.controls.base import CannotFix, Evaluation, State
from bucketwarden.controls.public_access_block import settings_off
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3control import S3ControlClient

RECREATE = (
    "an access point's Block Public Access cannot be changed after creation: re-create the "
    "access point with all four settings on"
)


def blocks_off_reason(off: str, recreate: str) -> str:
    """Why settings fixed at creation fail the check, and what to do instead."""
    return f"Block Public Access off: {off}; {recreate}"


class AccessPointPublicAccessBlock(AccessPointControl):
    id = "access-point-public-access-block"
    fsbp = ("S3.19",)
    severity = "CRITICAL"
    default_mode = Mode.NOTIFY
    family = "public-access"
    title = "Access points block public access"
    surface = "access point Block Public Access configuration"
    trigger_events = ("CreateAccessPoint",)
    read_actions = ("s3:GetAccessPoint",)
    write_actions = ()
    fixable = False

    def read(self, s3control: S3ControlClient, arn: str) -> State:
        return access_point(s3control, parse_arn(arn))

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        off = settings_off((state or {}).get("PublicAccessBlockConfiguration"))
        if not off:
            return Evaluation(True, "all four Block Public Access settings are on")
        return Evaluation(False, blocks_off_reason(", ".join(off), RECREATE), fixable=False)

    def apply(self, s3control: S3ControlClient, arn: str, desired: State) -> None:
        raise CannotFix(RECREATE)

    def describe(self, state: State) -> str:
        if state is None:
            return "none"
        off = settings_off(state.get("PublicAccessBlockConfiguration"))
        return "Block Public Access off: " + ", ".join(off) if off else "Block Public Access on"
