"""multi-region-access-point-public-access-block: every Multi-Region Access Point blocks public
access.

FSBP S3.24: a Multi-Region Access Point's Block Public Access is set when it is created and can
never be changed afterwards, so this control only reports (`fixable=False`): the finding names
each one with settings off and says to re-create it with all four on.

Multi-Region Access Points belong to the account, not to a region: the subject is the account
id (scope "account", as account-public-access-block), and the state lists all of them, read with
ListMultiRegionAccessPoints (the same report GetMultiRegionAccessPoint gives for one), from S3
Control in us-west-2, where AWS serves every Multi-Region Access Point request
(`service_region`). CreateMultiRegionAccessPoint is logged in us-west-2 too: a stack in another
region sees it only through a forwarder there; the sweep judges the account wherever it runs.
An account has no tags: only the control's mode exempts it.

The state is {"MultiRegionAccessPoints": [{"Name", "Alias", "PublicAccessBlock"}, ...]}, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bucketwarden.controls.access_point_public_access_block import blocks_off_reason
from bucketwarden.controls.account_public_access_block import account_of
from bucketwarden.controls.base import CannotFix, Control, Evaluation, State
from bucketwarden.controls.public_access_block import settings_off
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3control import S3ControlClient

    from bucketwarden.events import CloudTrailRecord

CONTROL_PLANE_REGION = "us-west-2"
POINTS = "MultiRegionAccessPoints"
RECREATE = (
    "a Multi-Region Access Point's Block Public Access cannot be changed after creation: "
    "re-create it with all four settings on"
)


def _open(state: State) -> list[tuple[str, list[str]]]:
    """(name, settings off) of each Multi-Region Access Point that does not block all four."""
    found = [(str(p.get("Name")), settings_off(p.get("PublicAccessBlock"))) for p in _points(state)]
    return [(name, off) for name, off in found if off]


def _points(state: State) -> list[dict[str, Any]]:
    return list((state or {}).get(POINTS) or [])


class MultiRegionAccessPointPublicAccessBlock(Control["S3ControlClient"]):
    id = "multi-region-access-point-public-access-block"
    fsbp = ("S3.24",)
    severity = "HIGH"
    default_mode = Mode.NOTIFY
    family = "public-access"
    title = "Multi-Region Access Points block public access"
    surface = "Multi-Region Access Points' Block Public Access"
    trigger_events = ("CreateMultiRegionAccessPoint",)
    read_actions = ("s3:ListMultiRegionAccessPoints",)
    write_actions = ()
    fixable = False
    scope = "account"
    service = "s3control"
    service_region = CONTROL_PLANE_REGION

    def subject(self, record: CloudTrailRecord) -> str | None:
        return account_of(record)

    def subject_account(self, subject: str) -> str | None:
        return subject  # the subject is the account id

    def read(self, s3control: S3ControlClient, account: str) -> State:
        points: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = (
                s3control.list_multi_region_access_points(AccountId=account, NextToken=token)
                if token
                else s3control.list_multi_region_access_points(AccountId=account)
            )
            points += [
                {
                    "Name": point.get("Name"),
                    "Alias": point.get("Alias"),
                    "PublicAccessBlock": point.get("PublicAccessBlock"),
                }
                for point in page.get("AccessPoints", [])
            ]
            token = page.get("NextToken")
            if not token:
                return {POINTS: sorted(points, key=lambda point: str(point["Name"]))}

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        found = _open(state)
        if not found:
            count = len(_points(state))
            return Evaluation(True, f"{count} Multi-Region Access Points, all block public access")
        named = ", ".join(f'"{name}" ({", ".join(off)})' for name, off in found)
        return Evaluation(False, blocks_off_reason(named, RECREATE), fixable=False)

    def apply(self, s3control: S3ControlClient, account: str, desired: State) -> None:
        raise CannotFix(RECREATE)

    def describe(self, state: State) -> str:
        found = _open(state)
        count = len(_points(state))
        if not found:
            return f"{count} Multi-Region Access Points, Block Public Access on"
        return f"{count} Multi-Region Access Points, {len(found)} with Block Public Access off"
