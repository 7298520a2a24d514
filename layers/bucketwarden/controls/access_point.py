"""access-point: an access point reachable from the internet has no public policy.

An access point is a second door to its bucket, with its own policy. S3 judges that policy as it
judges a bucket policy, with one difference the analyzer knows: `s3:DataAccessPointArn` does not
make an access point policy non-public (every request through the access point carries it). The
fix removes exactly the public statements (only their public principals, when they also name
fixed ones) and keeps the others in their order (the policy is deleted only when none is left),
as public-policy does for bucket policies.

What cannot be changed after creation is reported, never attempted: the network origin, and the
access point's own Block Public Access. An internet access point with settings of its own Block
Public Access off is named in the reason ("cannot be changed after creation: recreate the access
point"). A VPC access point is not reachable from the internet, so its policy is not judged.

The subject is the access point's ARN, built from the event (`requestParameters.name`, the
account and the region); the state is
{"Name", "Bucket", "BucketAccountId", "NetworkOrigin", "PublicAccessBlockConfiguration",
"Policy": document or None}. Exemption tags are read from the bucket the access point serves:
exempting a bucket from access-point covers its access points. A bucket in another account has
tags this account cannot read, so such an access point has no exemption but the mode.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.account_public_access_block import account_of
from bucketwarden.controls.base import Control, Evaluation, RecordReader, State
from bucketwarden.controls.bucket_policy import (
    parse_policy,
    policy_of,
    policy_text,
    same_policy,
    with_statements,
    without_public_parts,
)
from bucketwarden.controls.public_access_block import settings_off
from bucketwarden.policy import PolicyError, Verdict, analyze
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3control import S3ControlClient

    from bucketwarden.events import CloudTrailRecord

NO_POLICY = "NoSuchAccessPointPolicy"
VPC = "VPC"
# arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME, NAME as S3 allows it (3-50, a-z 0-9 -).
ACCESS_POINT_ARN = re.compile(
    r"^arn:(?P<partition>aws(-[a-z]+)*):s3:(?P<region>[a-z]{2}(-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):accesspoint/(?P<name>[a-z0-9][a-z0-9-]{1,48}[a-z0-9])$"
)
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"))
FIXED_AT_CREATION = "cannot be changed after creation: recreate the access point"


class AccessPointName(NamedTuple):
    """An access point as its ARN names it: the owning account and its name."""

    account: str
    name: str


def parse_arn(arn: str) -> AccessPointName:
    match = ACCESS_POINT_ARN.match(arn)
    if not match:
        raise ValueError(f"not an access point ARN: {arn!r}")
    return AccessPointName(match["account"], match["name"])


def partition_of(region: str) -> str:
    return next((p for prefix, p in _PARTITIONS if region.startswith(prefix)), "aws")


def access_point_arn(record: CloudTrailRecord) -> str | None:
    """The ARN of the access point the call names, or None when the record names none."""
    name = (record.requestParameters or {}).get("name")
    if not isinstance(name, str):
        return None
    if name.startswith("arn:"):  # the API also takes the ARN itself as the name
        return name if ACCESS_POINT_ARN.match(name) else None
    account, region = account_of(record), record.awsRegion or ""
    arn = f"arn:{partition_of(region)}:s3:{region}:{account}:accesspoint/{name}"
    return arn if account and ACCESS_POINT_ARN.match(arn) else None


def _verdict(state: State) -> Verdict | None:
    """The policy's verdict in the access point context; None without a policy."""
    document = policy_of(state)
    return None if document is None else analyze(document, "access-point")


def _fixed_settings_note(state: State) -> str | None:
    off = settings_off((state or {}).get("PublicAccessBlockConfiguration"))
    if not off:
        return None
    return f"its own Block Public Access is off ({', '.join(off)}) and {FIXED_AT_CREATION}"


def access_point(s3control: S3ControlClient, target: AccessPointName) -> dict[str, Any]:
    """What GetAccessPoint says of the access point that the controls judge."""
    point = s3control.get_access_point(AccountId=target.account, Name=target.name)
    return {
        "Name": point["Name"],
        "Bucket": point["Bucket"],
        "BucketAccountId": point.get("BucketAccountId"),
        "NetworkOrigin": point["NetworkOrigin"],
        "PublicAccessBlockConfiguration": point.get("PublicAccessBlockConfiguration"),
    }


class AccessPointControl(Control["S3ControlClient"]):
    """A control of one access point: named by its ARN, exempted by its bucket's tags."""

    scope = "access-point"
    service = "s3control"

    def subject(self, record: CloudTrailRecord) -> str | None:
        return access_point_arn(record)

    def exemption_bucket(self, subject: str, state: State) -> str | None:
        found = state or {}
        foreign = found.get("BucketAccountId") not in (None, parse_arn(subject).account)
        return None if foreign else found.get("Bucket")

    def subject_account(self, subject: str) -> str | None:
        return parse_arn(subject).account

    def subject_region(self, subject: str, recorded: str | None) -> str | None:
        match = ACCESS_POINT_ARN.match(subject)
        return match["region"] if match else None


class AccessPointPolicy(AccessPointControl):
    id = "access-point"
    severity = "CRITICAL"
    family = "public-access"
    title = "Internet access points have no public policy"
    surface = "access point policy"
    trigger_events = ("CreateAccessPoint", "PutAccessPointPolicy")
    read_actions = ("s3:GetAccessPoint", "s3:GetAccessPointPolicy")
    # The fix deletes the policy when every statement was public.
    write_actions = ("s3:PutAccessPointPolicy", "s3:DeleteAccessPointPolicy")
    recheck_before_write = True
    closes_public_exposure = True
    refusal_hint = (
        "S3 refuses a public access point policy while BlockPublicPolicy is on for the access "
        "point or the account"
    )

    def read(self, s3control: S3ControlClient, arn: str) -> State:
        """The access point (GetAccessPoint) and its policy (GetAccessPointPolicy)."""
        target = parse_arn(arn)
        return {**access_point(s3control, target), "Policy": self._policy(s3control, target)}

    def reread(
        self,
        s3control: S3ControlClient,
        arn: str,
        settings: Settings,
        judged: State,
        records: RecordReader | None = None,
    ) -> State:
        """Only the policy: nothing else of an access point can change after its creation."""
        return {**(judged or {}), "Policy": self._policy(s3control, parse_arn(arn))}

    @staticmethod
    def _policy(s3control: S3ControlClient, target: AccessPointName) -> dict[str, Any] | str | None:
        try:
            response = s3control.get_access_point_policy(AccountId=target.account, Name=target.name)
        except ClientError as error:
            if error_code(error) == NO_POLICY:
                return None
            raise
        return parse_policy(response["Policy"])

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        if (state or {}).get("NetworkOrigin") == VPC:
            return Evaluation(True, "VPC access point: not reachable from the internet")
        fixed_note = _fixed_settings_note(state)
        try:
            verdict = _verdict(state)
        except PolicyError as error:
            reason = f"the access point policy cannot be judged: {error}"
            return Evaluation(False, _joined(reason, fixed_note), fixable=False)
        document = policy_of(state)  # judged by the verdict: None only when the verdict is
        if verdict is None or document is None or not verdict.public:
            found = "no policy" if verdict is None else "no public statement"
            return Evaluation(True, _joined(f"internet access point, {found}", fixed_note))
        kept = without_public_parts(document, verdict)
        reasons = [reason.text.removesuffix(".") for reason in verdict.reasons]
        return Evaluation(False, _joined(*reasons, fixed_note), with_statements(state, kept))

    def apply(self, s3control: S3ControlClient, arn: str, desired: State) -> None:
        """Write the policy only: nothing else of an access point can change after creation."""
        target = parse_arn(arn)
        document = policy_of(desired)
        if document is None:
            s3control.delete_access_point_policy(AccountId=target.account, Name=target.name)
            return
        s3control.put_access_point_policy(
            AccountId=target.account, Name=target.name, Policy=policy_text(document)
        )

    def same(self, found: State, expected: State) -> bool:
        return same_policy(found, expected)

    def describe(self, state: State) -> str:
        if state is None:
            return "none"
        origin = "VPC" if state.get("NetworkOrigin") == VPC else "internet"
        try:
            verdict = _verdict(state)
        except PolicyError as error:
            return f"{origin} origin, not a policy ({error})"
        if verdict is None:
            policy = "no policy"
        else:
            policy = "public policy" if verdict.public else "policy not public"
        off = settings_off(state.get("PublicAccessBlockConfiguration"))
        block = "Block Public Access off: " + ", ".join(off) if off else "Block Public Access on"
        return f"{origin} origin, {policy}, {block}"


def _joined(*parts: str | None) -> str:
    return "; ".join(part for part in parts if part)
