"""object-ownership: ACLs are disabled (Object Ownership is BucketOwnerEnforced).

S3 refuses BucketOwnerEnforced while the bucket ACL grants access to anyone but the owner
(InvalidBucketAclWithObjectOwnership), so the fix takes three steps, in this order:

1. A grant to the S3 log delivery group becomes the bucket policy statement S3 documents for
   server access logging (service principal logging.s3.amazonaws.com, s3:PutObject on the
   bucket's objects, limited to the bucket owner's account with aws:SourceAccount). The policy is
   read right before it is written and every other statement is kept; an equivalent statement
   already there is recognised and nothing is added.
2. The ACL is rewritten with the owner's grants only.
3. Object Ownership is set to BucketOwnerEnforced.

Logs keep arriving at every point, so a failure between steps leaves a safe bucket, and the next
run (Lambda's retry, the next event, the sweep) finishes the job without repeating a step.

Any other grant (another account's canonical user, an e-mail grantee, AllUsers or
AuthenticatedUsers left by a public-acl that is off or exempted) blocks the fix: it is reported,
naming the grants a person must move to the bucket policy. A canonical user id cannot be mapped
safely to an account principal, and a public grant is public-acl's to judge.

The state is the setting and, while ACLs are enabled, the ACL (`Owner`, `Grants`): what a rollback
restores. With BucketOwnerEnforced the ACL is not read, since S3 then keeps it owner-only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from botocore.exceptions import ClientError

from bucketwarden.accounts import acting_account
from bucketwarden.aws import client, error_code
from bucketwarden.controls.base import CannotFix, Control, Evaluation, State, without_metadata
from bucketwarden.controls.bucket_policy import (
    MAX_POLICY_BYTES,
    as_list,
    bucket_arn,
    compact,
    policy_of,
    read_policy,
    size_in_bytes,
    with_statements,
    without_sid,
)
from bucketwarden.policy import statements
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import AccessControlPolicyTypeDef, OwnershipControlsRuleTypeDef

ENFORCED = "BucketOwnerEnforced"
NOT_CONFIGURED = "OwnershipControlsNotFoundError"

LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
# What server access logging needs from the group: write objects and read the bucket ACL.
LOG_DELIVERY_PERMISSIONS = frozenset({"WRITE", "READ_ACP"})
LOGGING_SERVICE = "logging.s3.amazonaws.com"
LOG_DELIVERY_SID = "BucketWardenS3ServerAccessLogs"
# Key of the desired state naming the policy statement the fix puts in place before the ACL write.
LOG_DELIVERY_STATEMENT = "LogDeliveryPolicyStatement"


def _grantee(grant: dict[str, Any]) -> dict[str, Any]:
    return grant.get("Grantee") or {}


def _is_owner_grant(grant: dict[str, Any], owner_id: str | None) -> bool:
    return bool(owner_id) and _grantee(grant).get("ID") == owner_id


def _is_log_delivery_grant(grant: dict[str, Any]) -> bool:
    return (
        _grantee(grant).get("URI") == LOG_DELIVERY
        and grant.get("Permission") in LOG_DELIVERY_PERMISSIONS
    )


def grantee_name(grant: dict[str, Any], owner_id: str | None = None) -> str:
    """Who a grant goes to, in full: a person must be able to find the grantee from it."""
    grantee = _grantee(grant)
    if _is_owner_grant(grant, owner_id):
        return "the owner"
    if grantee.get("URI"):
        return str(grantee["URI"]).rsplit("/", 1)[-1]
    if grantee.get("EmailAddress"):
        return f"e-mail grantee {grantee['EmailAddress']}"
    return f"canonical user {grantee.get('ID', '?')}"


def _described(grants: list[dict[str, Any]], owner_id: str | None) -> str:
    return ", ".join(f"{g.get('Permission')} to {grantee_name(g, owner_id)}" for g in grants)


class AclGrants(NamedTuple):
    """A bucket ACL's grants by what disabling ACLs does to them."""

    owner: dict[str, Any]
    owners: list[dict[str, Any]]  # kept
    log_delivery: list[dict[str, Any]]  # moved to the bucket policy
    blocking: list[dict[str, Any]]  # only a person can move them

    @classmethod
    def of(cls, state: dict[str, Any]) -> AclGrants:
        owner = dict(state.get("Owner") or {})
        grants = list(state.get("Grants") or [])
        owners = [g for g in grants if _is_owner_grant(g, owner.get("ID"))]
        log_delivery = [g for g in grants if _is_log_delivery_grant(g)]
        blocking = [g for g in grants if g not in owners and g not in log_delivery]
        return cls(owner, owners, log_delivery, blocking)

    @property
    def owner_id(self) -> str | None:
        return self.owner.get("ID")

    @property
    def log_delivery_writes(self) -> bool:
        # READ_ACP alone lets the group read the ACL, nothing more: it needs no statement.
        return any(g.get("Permission") == "WRITE" for g in self.log_delivery)

    def owner_only(self) -> list[dict[str, Any]]:
        """The owner's grants as they are; FULL_CONTROL, as S3 gives it, if there are none."""
        full_control = {
            "Grantee": {"Type": "CanonicalUser", "ID": self.owner_id},
            "Permission": "FULL_CONTROL",
        }
        return self.owners or [full_control]


class ObjectOwnership(Control["S3Client"]):
    id = "object-ownership"
    fsbp = ("S3.12",)
    severity = "MEDIUM"
    family = "public-access"
    title = "ACLs are disabled (Object Ownership BucketOwnerEnforced)"
    surface = "Object Ownership setting"
    trigger_events = ("CreateBucket", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls")
    read_actions = ("s3:GetBucketOwnershipControls", "s3:GetBucketAcl", "s3:GetBucketPolicy")
    write_actions = ("s3:PutBucketOwnershipControls", "s3:PutBucketAcl", "s3:PutBucketPolicy")

    def read(self, s3: S3Client, bucket: str) -> State:
        ownership = _read_ownership(s3, bucket)
        if ownership == ENFORCED:
            return {"ObjectOwnership": ENFORCED}
        acl = without_metadata(s3.get_bucket_acl(Bucket=bucket))
        return {
            "ObjectOwnership": ownership,
            "Owner": acl.get("Owner", {}),
            "Grants": acl.get("Grants", []),
        }

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        state = state or {}
        ownership = state.get("ObjectOwnership")
        if ownership == ENFORCED:
            return Evaluation(True, f"ACLs are disabled ({ENFORCED})")
        found = f"ACLs are enabled ({ownership or 'no Object Ownership setting'})"
        acl = AclGrants.of(state)
        if acl.blocking:
            reason = (
                f"{found}; S3 cannot disable them while the ACL grants "
                f"{_described(acl.blocking, acl.owner_id)}: a person must move these grants "
                "to the bucket policy (a canonical user id does not map safely to an account "
                "principal)"
            )
            return Evaluation(False, reason, fixable=False)
        desired: dict[str, Any] = {"ObjectOwnership": ENFORCED}
        if acl.log_delivery:
            desired.update(Owner=acl.owner, Grants=acl.owner_only())
        if acl.log_delivery_writes:
            desired[LOG_DELIVERY_STATEMENT] = LOG_DELIVERY_SID
            found += "; the S3 log delivery group's ACL grant moves to the bucket policy first"
        return Evaluation(False, found, desired)

    def describe(self, state: State) -> str:
        state = state or {}
        ownership = state.get("ObjectOwnership")
        if ownership == ENFORCED:
            return f"{ENFORCED} (ACLs disabled)"
        owner_id = (state.get("Owner") or {}).get("ID")
        grants = _described(list(state.get("Grants") or []), owner_id) or "no grants"
        return f"{ownership or 'no Object Ownership setting'} (ACLs enabled); ACL: {grants}"

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        """Write `desired` in the order S3 accepts: ACLs disabled last, or enabled first.

        Several S3 calls, each skipped when `desired` leaves its part alone. A rollback to an
        audit record's `before` goes through here too (ACLs enabled, then the grants put back).
        """
        desired = desired or {}
        if desired.get(LOG_DELIVERY_STATEMENT):
            grant_log_delivery_by_policy(s3, bucket)
        if desired.get("ObjectOwnership") == ENFORCED:
            _write_acl(s3, bucket, desired)
            _write_ownership(s3, bucket, desired.get("ObjectOwnership"))
        else:
            _write_ownership(s3, bucket, desired.get("ObjectOwnership"))
            _write_acl(s3, bucket, desired)


def _read_ownership(s3: S3Client, bucket: str) -> str | None:
    try:
        response = s3.get_bucket_ownership_controls(Bucket=bucket)
    except ClientError as error:
        if error_code(error) == NOT_CONFIGURED:
            return None
        raise
    rules = response.get("OwnershipControls", {}).get("Rules")
    return rules[0].get("ObjectOwnership") if rules else None


def _write_acl(s3: S3Client, bucket: str, desired: dict[str, Any]) -> None:
    if "Grants" in desired:
        policy = {"Owner": desired.get("Owner", {}), "Grants": desired["Grants"]}
        s3.put_bucket_acl(
            Bucket=bucket, AccessControlPolicy=cast("AccessControlPolicyTypeDef", policy)
        )


def _write_ownership(s3: S3Client, bucket: str, ownership: str | None) -> None:
    if ownership is None:
        s3.delete_bucket_ownership_controls(Bucket=bucket)
        return
    # An ownership as read from S3 (or recorded from such a read), so one S3 knows.
    rule = cast("OwnershipControlsRuleTypeDef", {"ObjectOwnership": ownership})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [rule]})


# -- the log delivery statement in the bucket policy -----------------------------------------------


class PolicyTooLarge(CannotFix):
    """The log delivery statement does not fit in the bucket policy (S3's 20 KB limit)."""


def log_delivery_statement(bucket_arn: str, account: str) -> dict[str, Any]:
    """The statement S3's user guide gives for server access log delivery to the bucket.

    aws:SourceAccount limits it to logs of the owner's buckets: S3 delivers logs only to a
    bucket the source bucket's owner owns, so no log delivery is lost by it.
    """
    return {
        "Sid": LOG_DELIVERY_SID,
        "Effect": "Allow",
        "Principal": {"Service": LOGGING_SERVICE},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }


def grant_log_delivery_by_policy(s3: S3Client, bucket: str) -> None:
    """Make sure the bucket policy lets S3 deliver server access logs; keep everything else.

    The policy is read here, right before the write, not with the state: the less time between
    the two, the smaller the chance of overwriting a change made meanwhile.
    """
    account = _owner_account(s3)
    wanted = log_delivery_statement(bucket_arn(s3, bucket), account)
    changed = with_log_delivery(policy_of(read_policy(s3, bucket)), wanted)
    if changed is None:
        return
    if size_in_bytes(changed) > MAX_POLICY_BYTES:
        # Raised before the ACL is touched: the log delivery grant stays where it is.
        raise PolicyTooLarge(
            f"the bucket policy of {bucket} would exceed {MAX_POLICY_BYTES} bytes with the "
            f"{LOG_DELIVERY_SID} statement; ACLs stay enabled"
        )
    # The statement names this account: S3 refuses the write if the bucket is another's.
    s3.put_bucket_policy(Bucket=bucket, Policy=compact(changed), ExpectedBucketOwner=account)


def _owner_account(s3: S3Client) -> str:
    """The caller's account, which owns the bucket: only the owner may write a bucket policy.

    GetCallerIdentity needs no IAM permission. The ACL names the owner by canonical id only.
    A member role's client names its account itself (the hub's STS would name the hub).
    """
    member = acting_account(s3)
    if member is not None:
        return member
    sts = client("sts", s3.meta.region_name)
    return str(sts.get_caller_identity()["Account"])


def with_log_delivery(
    document: dict[str, Any] | str | None, wanted: dict[str, Any]
) -> dict[str, Any] | None:
    """The policy with `wanted` added, or None when a statement already does what it does.

    A statement under our Sid that no longer does it stays, without the Sid (a policy cannot
    hold one Sid twice): it may be a Deny, and dropping it would widen access. Every other
    statement is kept as it is, in its order, and so are Version and Id.
    """
    existing = [] if document is None else statements(document)
    if any(_does_what(statement, wanted) for statement in existing):
        return None
    kept = [
        without_sid(s) if isinstance(s, dict) and s.get("Sid") == wanted["Sid"] else s
        for s in existing
    ]
    added: dict[str, Any] = with_statements({"Policy": document}, [*kept, wanted])["Policy"]
    return added


def _does_what(statement: Any, wanted: dict[str, Any]) -> bool:
    """Does `statement` let the logging service put every object `wanted` lets it put?

    Only an unconditional statement or one with `wanted`'s condition counts: a narrower
    condition (a source bucket's ARN, say) would cut off logs the ACL grant lets through.
    """
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
        return False
    if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
        return False
    principal = statement.get("Principal")
    services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
    return (
        LOGGING_SERVICE in services
        and any(_glob(str(a), wanted["Action"], True) for a in as_list(statement.get("Action")))
        and any(
            _covers_objects(str(r), wanted["Resource"]) for r in as_list(statement.get("Resource"))
        )
        and _same_condition(statement.get("Condition"), wanted["Condition"])
    )


def _same_condition(condition: Any, wanted: dict[str, Any]) -> bool:
    """No condition, or `wanted`'s (a value may be written as a list of one)."""
    if not condition:
        return True
    if not isinstance(condition, dict) or condition.keys() != wanted.keys():
        return False
    return all(
        isinstance(condition[operator], dict)
        and {k: as_list(v) for k, v in condition[operator].items()}
        == {k: as_list(v) for k, v in body.items()}
        for operator, body in wanted.items()
    )


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _covers_objects(pattern: str, objects: str) -> bool:
    """Does the Resource `pattern` match every object key of `objects` ("arn:…:bucket/*")?

    It does when it ends in `*` and the rest matches the start of "arn:…:bucket/": the final
    `*` then takes any key. "arn:aws:s3:::bucket/logs/*" covers only some keys, so it does not.
    """
    prefix = objects.removesuffix("*")
    head = pattern.removesuffix("*")
    if head == pattern:
        return False
    return any(_glob(head, prefix[:end]) for end in range(len(prefix) + 1))
