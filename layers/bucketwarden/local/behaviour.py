"""What S3 does and the emulator does not: 2023 defaults for new buckets, and what they refuse.

Since April 2023 a new bucket has SSE-S3 default encryption, all four Block Public Access
settings and Object Ownership BucketOwnerEnforced (ACLs disabled), and S3 refuses calls that
those settings forbid. moto applies none of it, so the local endpoint does it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends

from bucketwarden.controls.public_acl import PUBLIC_GROUPS
from bucketwarden.local.operations import ConfigurationCall
from bucketwarden.policy import PolicyError, analyze

PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
# Canned ACLs that grant nothing beyond the owner: S3 accepts them with ACLs disabled.
OWNER_ONLY_CANNED_ACLS = frozenset({"private", "bucket-owner-full-control"})
GRANT_HEADERS = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)

NEW_BUCKET_ENCRYPTION = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
}
ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        ).encode()


def _bucket(name: str | None) -> Any | None:
    if not name:
        return None
    try:
        return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(name)
    except MissingBucket:
        return None


def _first(parameters: dict[str, Any], header: str) -> str | None:
    values = parameters.get(header)
    return str(values[0]) if values else None


def _body_grants(call: ConfigurationCall) -> tuple[str | None, list[dict[str, Any]]]:
    """The owner id and the grants of an AccessControlPolicy request body."""
    policy = call.request_parameters.get("AccessControlPolicy") or {}
    grants = (policy.get("AccessControlList") or {}).get("Grant") or []
    return (policy.get("Owner") or {}).get("ID"), grants if isinstance(grants, list) else [grants]


def _acl_grantee_uris(call: ConfigurationCall) -> set[str]:
    """URIs of the groups a PutBucketAcl or CreateBucket call grants to."""
    uris = {
        part.split("=", 1)[1].strip().strip('"')
        for header in GRANT_HEADERS
        for part in (_first(call.request_parameters, header) or "").split(",")
        if part.strip().startswith("uri=")
    }
    _, grants = _body_grants(call)
    return uris | {str(g["Grantee"]["URI"]) for g in grants if (g.get("Grantee") or {}).get("URI")}


def _acl_is_public(call: ConfigurationCall) -> bool:
    canned = _first(call.request_parameters, "x-amz-acl")
    return canned in PUBLIC_CANNED_ACLS or bool(_acl_grantee_uris(call) & set(PUBLIC_GROUPS))


def _acl_is_owner_only(call: ConfigurationCall) -> bool:
    """True for an ACL that S3 still accepts with ACLs disabled: full control to the owner only."""
    canned = _first(call.request_parameters, "x-amz-acl")
    if canned:
        return canned in OWNER_ONLY_CANNED_ACLS
    if any(_first(call.request_parameters, header) for header in GRANT_HEADERS):
        return False
    owner, grants = _body_grants(call)
    return all(
        (g.get("Grantee") or {}).get("ID") == owner and g.get("Permission") == "FULL_CONTROL"
        for g in grants
    )


def _policy_is_public(document: Any) -> bool:
    """S3's meaning of public for a bucket policy; a document that is no policy is not public."""
    try:
        return analyze(document).public
    except PolicyError:
        return False  # S3 answers MalformedPolicy, not AccessDenied: moto's part to refuse


def refusal(call: ConfigurationCall) -> Refusal | None:
    """The error S3 would answer `call` with under the bucket's settings, or None."""
    if call.event_name == "CreateBucket":
        return _create_bucket_refusal(call)
    bucket = _bucket(call.bucket)
    if bucket is None:
        return None
    block = bucket.public_access_block
    if call.event_name == "PutBucketAcl":
        if bucket.ownership_rule == "BucketOwnerEnforced" and not _acl_is_owner_only(call):
            return Refusal(400, "AccessControlListNotSupported", "The bucket does not allow ACLs")
        if block is not None and block.block_public_acls and _acl_is_public(call):
            return Refusal(403, "AccessDenied", "Access Denied")
    if call.event_name == "PutBucketPolicy":
        return _policy_refusal(call, block)
    return None


def _policy_refusal(call: ConfigurationCall, block: Any) -> Refusal | None:
    document = call.request_parameters.get("bucketPolicy")
    if block is not None and block.block_public_policy and _policy_is_public(document):
        return Refusal(403, "AccessDenied", "Access Denied")
    return None


def _create_bucket_refusal(call: ConfigurationCall) -> Refusal | None:
    ownership = _first(call.request_parameters, "x-amz-object-ownership") or "BucketOwnerEnforced"
    if ownership == "BucketOwnerEnforced" and not _acl_is_owner_only(call):
        return Refusal(
            400,
            "InvalidBucketAclWithObjectOwnership",
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        )
    # A new bucket's Block Public Access is on from the start, whatever the ownership asked for.
    if _acl_is_public(call):
        return Refusal(
            400,
            "InvalidBucketAclWithBlockPublicAccessError",
            "Bucket cannot have public ACLs set with BlockPublicAccess enabled",
        )
    return None


def new_bucket_defaults(call: ConfigurationCall, s3: Any) -> None:
    """Give a bucket just created what S3 gives every new bucket, through the S3 API."""
    bucket = str(call.bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=NEW_BUCKET_ENCRYPTION)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)
    if not _first(call.request_parameters, "x-amz-object-ownership"):
        s3.put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        )


def encryption_falls_back(call: ConfigurationCall, s3: Any) -> None:
    """DeleteBucketEncryption leaves SSE-S3 in place: S3 encrypts every bucket now."""
    s3.put_bucket_encryption(
        Bucket=str(call.bucket), ServerSideEncryptionConfiguration=NEW_BUCKET_ENCRYPTION
    )
