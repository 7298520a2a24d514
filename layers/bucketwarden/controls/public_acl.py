"""public-acl: the bucket ACL grants nothing to AllUsers or AuthenticatedUsers.

The fix removes exactly those grants and rewrites the ACL with everything else kept (owner,
log-delivery and cross-account grants). A canned `private` ACL would lose those grants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from bucketwarden.controls.base import Control, Evaluation, State, without_metadata
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import AccessControlPolicyTypeDef

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}
# Bucket ACL permissions that let anyone list the bucket, which a website listing relies on.
READ_PERMISSIONS = frozenset({"READ", "FULL_CONTROL"})


def public_group(grant: dict[str, Any]) -> str | None:
    """The public group a grant goes to ("AllUsers"/"AuthenticatedUsers"), or None."""
    grantee = grant.get("Grantee") or {}
    return PUBLIC_GROUPS.get(str(grantee.get("URI", "")))


def _grantee_name(grant: dict[str, Any]) -> str:
    grantee = grant.get("Grantee") or {}
    uri = str(grantee.get("URI", ""))
    if uri:
        return uri.rsplit("/", 1)[-1]
    return str(grantee.get("DisplayName") or grantee.get("ID", "?"))[:12]


def _grantee_key(grantee: dict[str, Any]) -> tuple[str, ...]:
    # S3 adds a DisplayName (and may drop it) on its own: who the grantee is, is the rest.
    return tuple(str(grantee.get(key, "")) for key in ("Type", "ID", "URI", "EmailAddress"))


def _acl_key(state: State) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], str]]]:
    """An ACL as compared: its owner's id and its grants (grantee, permission), in any order."""
    found = state or {}
    grants = [
        (_grantee_key(g.get("Grantee") or {}), str(g.get("Permission")))
        for g in found.get("Grants", [])
    ]
    return (str((found.get("Owner") or {}).get("ID", "")),), sorted(grants)


class PublicAcl(Control["S3Client"]):
    id = "public-acl"
    fsbp = ("S3.2", "S3.3")
    severity = "CRITICAL"
    family = "public-access"
    title = "Bucket ACL grants no public access"
    surface = "bucket ACL"
    trigger_events = ("CreateBucket", "PutBucketAcl")
    read_actions = ("s3:GetBucketAcl",)
    checks_website = True
    closes_public_exposure = True
    refusal_hint = (
        "S3 refuses a public ACL while BlockPublicAcls is on for the bucket or the account, and "
        "any ACL grant while ACLs are disabled (object-ownership BucketOwnerEnforced)"
    )
    write_actions = ("s3:PutBucketAcl",)
    recheck_before_write = True

    def read(self, s3: S3Client, bucket: str) -> State:
        return without_metadata(s3.get_bucket_acl(Bucket=bucket))

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        grants = list((state or {}).get("Grants", []))
        public = [g for g in grants if public_group(g)]
        if not public:
            return Evaluation(True, "no grant to AllUsers or AuthenticatedUsers")
        described = ", ".join(f"{g.get('Permission')} to {public_group(g)}" for g in public)
        kept = [g for g in grants if not public_group(g)]
        desired = {"Owner": (state or {}).get("Owner", {}), "Grants": kept}
        readable = any(
            public_group(g) == "AllUsers" and g.get("Permission") in READ_PERMISSIONS
            for g in public
        )
        return Evaluation(False, f"ACL grants {described}", desired, public_read=readable)

    def same(self, found: State, expected: State) -> bool:
        return _acl_key(found) == _acl_key(expected)

    def describe(self, state: State) -> str:
        grants = (state or {}).get("Grants", [])
        return ", ".join(f"{g.get('Permission')}:{_grantee_name(g)}" for g in grants) or "no grants"

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        policy = cast("AccessControlPolicyTypeDef", desired)  # a State is S3's own
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
