"""What S3 does and the emulator does not: 2023 defaults for new buckets, and what they refuse.

Since April 2023 a new bucket has SSE-S3 default encryption, all four Block Public Access
settings and Object Ownership BucketOwnerEnforced (ACLs disabled), and S3 refuses calls that
those settings forbid: ACL grants while ACLs are disabled, disabling ACLs while the ACL grants
others, public ACLs and policies under Block Public Access (a bucket's, or an access point's own
for its policy). moto applies none of it, so the local endpoint does it here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import MissingBucket
from moto.s3.models import OWNER, FakeBucket, s3_backends
from moto.s3control.exceptions import AccessPointNotFound
from moto.s3control.models import s3control_backends

from bucketwarden.controls.bucket_policy import MAX_POLICY_BYTES, as_list
from bucketwarden.controls.object_ownership import ENFORCED
from bucketwarden.controls.public_acl import PUBLIC_GROUPS
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.policy import Context, PolicyError, analyze
from bucketwarden_tools.local.operations import ConfigurationCall

PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
# Canned ACLs that grant nothing beyond the owner: S3 accepts them with ACLs disabled.
OWNER_ONLY_CANNED_ACLS = frozenset({"private", "bucket-owner-full-control"})
# Grant header → the boto3 parameter that sends it.
GRANT_PARAMETERS = {
    "x-amz-grant-read": "GrantRead",
    "x-amz-grant-write": "GrantWrite",
    "x-amz-grant-read-acp": "GrantReadACP",
    "x-amz-grant-write-acp": "GrantWriteACP",
    "x-amz-grant-full-control": "GrantFullControl",
}
GRANT_HEADERS = tuple(GRANT_PARAMETERS)

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


ACCESS_DENIED = Refusal(403, "AccessDenied", "Access Denied")
POLICY_TOO_LARGE = Refusal(400, "MalformedPolicy", "Policies must be less than 20 KB")
ACLS_NOT_SUPPORTED = Refusal(400, "AccessControlListNotSupported", "The bucket does not allow ACLs")
ACLS_WITH_ENFORCED_OWNERSHIP = Refusal(
    400,
    "InvalidBucketAclWithObjectOwnership",
    "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
)


def _bucket(name: str | None) -> Any | None:
    if not name:
        return None
    # The bucket's own account: a member's, in a local organization (--accounts).
    partition, account = s3_backends.bucket_accounts.get(name, ("aws", DEFAULT_ACCOUNT_ID))
    try:
        return s3_backends[account][partition].get_bucket(name)
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


def _policy_is_public(document: Any, context: Context = "bucket") -> bool:
    """S3's meaning of public for a bucket or access point policy; a document that is no policy
    is not public."""
    try:
        return analyze(document, context).public
    except PolicyError:
        return False  # S3 answers MalformedPolicy, not AccessDenied: moto's part to refuse


def refusal(call: ConfigurationCall) -> Refusal | None:
    """The error S3 would answer `call` with under the bucket's settings, or None."""
    if call.event_name == "CreateBucket":
        return _create_bucket_refusal(call)
    if call.event_name == "PutAccessPointPolicy":
        return _access_point_policy_refusal(call)
    judge = _BUCKET_REFUSALS.get(call.event_name)
    bucket = _bucket(call.bucket) if judge else None
    return judge(call, bucket) if judge and bucket is not None else None


def _acl_refusal(call: ConfigurationCall, bucket: Any) -> Refusal | None:
    if bucket.ownership_rule == ENFORCED and not _acl_is_owner_only(call):
        return ACLS_NOT_SUPPORTED
    block = bucket.public_access_block
    if block is not None and block.block_public_acls and _acl_is_public(call):
        return ACCESS_DENIED
    return None


def _ownership_refusal(call: ConfigurationCall, bucket: Any) -> Refusal | None:
    """ACLs cannot be disabled while the bucket ACL grants anyone but the owner."""
    rule = (call.request_parameters.get("OwnershipControls") or {}).get("Rule") or {}
    if rule.get("ObjectOwnership") != ENFORCED or bucket.acl is None:
        return None
    grants_others = any(
        grantee.uri or grantee.id != OWNER
        for grant in bucket.acl.grants
        for grantee in grant.grantees
    )
    return ACLS_WITH_ENFORCED_OWNERSHIP if grants_others else None


def policy_size(text: str) -> int:
    """A policy's size as S3 limits it: its UTF-8 bytes without the whitespace between tokens
    (escapes such as \\u00e9 count as written, six bytes)."""
    kept: list[str] = []
    in_string = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        elif char.isspace() and not in_string:
            continue
        kept.append(char)
    return len("".join(kept).encode("utf-8"))


def _too_large(text: Any) -> bool:
    return isinstance(text, str) and policy_size(text) > MAX_POLICY_BYTES


def _policy_refusal(call: ConfigurationCall, bucket: Any) -> Refusal | None:
    if _too_large(call.body.decode("utf-8", "replace")):
        return POLICY_TOO_LARGE
    document = call.request_parameters.get("bucketPolicy")
    block = bucket.public_access_block
    if block is not None and block.block_public_policy and _policy_is_public(document):
        return ACCESS_DENIED
    return None


_BUCKET_REFUSALS: dict[str, Callable[[ConfigurationCall, Any], Refusal | None]] = {
    "PutBucketAcl": _acl_refusal,
    "PutBucketOwnershipControls": _ownership_refusal,
    "PutBucketPolicy": _policy_refusal,
}


def _is_on(setting: Any) -> bool:
    """A Block Public Access setting as moto keeps it: a boolean or the XML text."""
    return setting is True or str(setting).lower() == "true"


def _access_point_policy_refusal(call: ConfigurationCall) -> Refusal | None:
    """An access point's own BlockPublicPolicy refuses a public access point policy.

    The account's settings are not applied (see docs/local.md).
    """
    backend = s3control_backends[DEFAULT_ACCOUNT_ID]["aws"]
    account = str(call.request_parameters.get("x-amz-account-id"))
    try:
        point = backend.get_access_point(account, str(call.access_point))
    except AccessPointNotFound:
        return None  # S3 Control answers NoSuchAccessPoint: moto's part
    request = call.request_parameters.get("PutAccessPointPolicyRequest") or {}
    document = request.get("Policy") if isinstance(request, dict) else None
    if _too_large(document):
        return POLICY_TOO_LARGE
    if not _is_on(point.pubc.get("BlockPublicPolicy")) or not isinstance(document, str):
        return None
    return ACCESS_DENIED if _policy_is_public(document, context="access-point") else None


def _create_bucket_refusal(call: ConfigurationCall) -> Refusal | None:
    ownership = _first(call.request_parameters, "x-amz-object-ownership") or ENFORCED
    if ownership == ENFORCED and not _acl_is_owner_only(call):
        return ACLS_WITH_ENFORCED_OWNERSHIP
    # A new bucket's Block Public Access is on from the start, whatever the ownership asked for.
    if _acl_is_public(call):
        return Refusal(
            400,
            "InvalidBucketAclWithBlockPublicAccessError",
            "Bucket cannot have public ACLs set with BlockPublicAccess enabled",
        )
    return None


def new_bucket_defaults(call: ConfigurationCall, s3: Any) -> None:
    """Give a bucket just created what S3 gives every new bucket, through the S3 API.

    The grants CreateBucket asked for by header are applied too: moto ignores them. They come
    before ACLs are disabled, which S3 allows at creation for grants to the owner only.
    """
    bucket = str(call.bucket)
    grants = {
        parameter: value
        for header, parameter in GRANT_PARAMETERS.items()
        if (value := _first(call.request_parameters, header))
    }
    if grants:
        s3.put_bucket_acl(Bucket=bucket, **grants)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=NEW_BUCKET_ENCRYPTION)
    if is_directory_bucket(bucket):
        return  # a directory bucket has no Block Public Access or ownership of its own
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)
    if not _first(call.request_parameters, "x-amz-object-ownership"):
        s3.put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": ENFORCED}]},
        )


def encryption_falls_back(call: ConfigurationCall, s3: Any) -> None:
    """DeleteBucketEncryption leaves SSE-S3 in place: S3 encrypts every bucket now."""
    s3.put_bucket_encryption(
        Bucket=str(call.bucket), ServerSideEncryptionConfiguration=NEW_BUCKET_ENCRYPTION
    )


def judge_log_targets_by_principal_objects() -> None:
    """Let PutBucketLogging reach a target bucket whose policy has a statement for everyone.

    moto checks, on PutBucketLogging, that the target's policy (or ACL) lets the logging service
    write, and fails with a server error on any statement whose Principal is "*": every bucket
    has one once secure-transport has added its Deny. Only statements with a principal object
    can name the logging service, so moto is shown those alone.
    """
    moto_check = FakeBucket.__dict__["_log_permissions_enabled_policy"].__func__

    def check(target_bucket: Any, target_prefix: str | None) -> bool:
        if not target_bucket.policy:
            return bool(moto_check(target_bucket, target_prefix))
        document = json.loads(target_bucket.policy)
        named = [
            statement
            for statement in as_list(document.get("Statement", []))
            if isinstance(statement, dict) and isinstance(statement.get("Principal"), dict)
        ]
        view = SimpleNamespace(
            policy=json.dumps({**document, "Statement": named}).encode(),
            partition=target_bucket.partition,
            name=target_bucket.name,
        )
        return bool(moto_check(view, target_prefix))

    FakeBucket._log_permissions_enabled_policy = staticmethod(check)  # type: ignore[method-assign]
