"""behaviour: S3's 2023 defaults for new buckets and the calls they make S3 refuse.

Bucket state lives in moto's in-process backend (`aws` fixture), set through boto3; the calls
judged are the ones identify() makes of real botocore requests (see test_local_operations.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.s3.models import FakeBucket

from bucketwarden_tools.local import behaviour
from bucketwarden_tools.local.operations import ConfigurationCall
from tests.test_local_operations import RequestCapture

REGION = "us-east-1"
BUCKET = "settled-bucket"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
OTHER_ACCOUNT_ID = "b" * 64
PUBLIC_READ_STATEMENT = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
}
ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@pytest.fixture(scope="module")
def capture() -> Iterator[RequestCapture]:
    server = RequestCapture()
    yield server
    server.close()


@pytest.fixture(scope="module")
def _moto_s3_client() -> Any:
    # One client for the module: moto intercepts it inside each test's own mock_aws.
    return boto3.session.Session().client(
        "s3", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def s3(aws: None, _moto_s3_client: Any) -> Any:
    """moto's in-process S3, the backend behaviour.py reads."""
    return _moto_s3_client


@pytest.fixture
def call_of(capture: RequestCapture) -> Callable[[Callable[[Any], Any]], ConfigurationCall]:
    """The ConfigurationCall a boto3 S3 call makes, sent to the capture server (not to moto)."""

    def identified(action: Callable[[Any], Any]) -> ConfigurationCall:
        client = capture.client("s3", signing_region=REGION)
        call = capture.identified(lambda: action(client))
        assert call is not None
        return call

    return identified


CallOf = Callable[[Callable[[Any], Any]], ConfigurationCall]


def _bucket(s3: Any, ownership: str, block: dict[str, bool] | None = None) -> str:
    s3.create_bucket(Bucket=BUCKET, ObjectOwnership=ownership)
    if block is not None:
        s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=block)
    return str(s3.get_bucket_acl(Bucket=BUCKET)["Owner"]["ID"])


def _acl_body(owner: str, *grantees: dict[str, str]) -> dict[str, Any]:
    grants = [{"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"}]
    grants += [{"Grantee": grantee, "Permission": "READ"} for grantee in grantees]
    return {"Owner": {"ID": owner}, "Grants": grants}


def _code(call: ConfigurationCall) -> str | None:
    refused = behaviour.refusal(call)
    return refused.code if refused else None


# -- ACLs disabled (BucketOwnerEnforced) ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ACL": "public-read"},
        {"ACL": "log-delivery-write"},
        {"GrantRead": f'uri="{LOG_DELIVERY}"'},
        {"GrantFullControl": f'id="{OTHER_ACCOUNT_ID}"'},
    ],
)
def test_acl_calls_refused_when_acls_are_disabled(
    s3: Any, call_of: CallOf, kwargs: dict[str, str]
) -> None:
    _bucket(s3, "BucketOwnerEnforced")
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, **kwargs))
    refused = behaviour.refusal(call)
    assert refused is not None
    assert (refused.status, refused.code) == (400, "AccessControlListNotSupported")
    assert b"<Code>AccessControlListNotSupported</Code>" in refused.body()


def test_acl_body_granting_others_refused_when_acls_are_disabled(s3: Any, call_of: CallOf) -> None:
    owner = _bucket(s3, "BucketOwnerEnforced")
    body = _acl_body(owner, {"Type": "CanonicalUser", "ID": OTHER_ACCOUNT_ID})
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=body))
    assert _code(call) == "AccessControlListNotSupported"


@pytest.mark.parametrize("canned", ["private", "bucket-owner-full-control"])
def test_owner_only_canned_acls_allowed_when_acls_are_disabled(
    s3: Any, call_of: CallOf, canned: str
) -> None:
    _bucket(s3, "BucketOwnerEnforced", ALL_BLOCKED)
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, ACL=canned))
    assert behaviour.refusal(call) is None


def test_owner_only_acl_body_allowed_when_acls_are_disabled(s3: Any, call_of: CallOf) -> None:
    owner = _bucket(s3, "BucketOwnerEnforced", ALL_BLOCKED)
    body = _acl_body(owner)
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=body))
    assert behaviour.refusal(call) is None


def _disable_acls(client: Any) -> Any:
    return client.put_bucket_ownership_controls(
        Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )


@pytest.mark.parametrize(
    "acl",
    [
        {"ACL": "log-delivery-write"},
        {"ACL": "public-read"},
        {"GrantRead": f'id="{OTHER_ACCOUNT_ID}"', "GrantFullControl": "owner"},
    ],
    ids=["log-delivery", "public", "other-account"],
)
def test_disabling_acls_refused_while_the_acl_grants_others(
    s3: Any, call_of: CallOf, acl: dict[str, str]
) -> None:
    owner = _bucket(s3, "ObjectWriter")
    if acl.get("GrantFullControl") == "owner":
        acl = dict(acl, GrantFullControl=f'id="{owner}"')
    s3.put_bucket_acl(Bucket=BUCKET, **acl)
    refused = behaviour.refusal(call_of(_disable_acls))
    assert refused is not None
    assert (refused.status, refused.code) == (400, "InvalidBucketAclWithObjectOwnership")


def test_disabling_acls_allowed_once_the_acl_is_owner_only(s3: Any, call_of: CallOf) -> None:
    owner = _bucket(s3, "ObjectWriter")
    s3.put_bucket_acl(Bucket=BUCKET, ACL="log-delivery-write")
    s3.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=_acl_body(owner))
    assert behaviour.refusal(call_of(_disable_acls)) is None


@pytest.mark.parametrize("ownership", ["ObjectWriter", "BucketOwnerPreferred"])
def test_other_ownership_allowed_whatever_the_acl(s3: Any, call_of: CallOf, ownership: str) -> None:
    _bucket(s3, "BucketOwnerPreferred")
    s3.put_bucket_acl(Bucket=BUCKET, ACL="log-delivery-write")
    call = call_of(
        lambda client: client.put_bucket_ownership_controls(
            Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
        )
    )
    assert behaviour.refusal(call) is None


# -- Block Public Access ------------------------------------------------------------------------

PUBLIC_ACL_HEADERS = [
    {"ACL": "public-read"},
    {"ACL": "public-read-write"},
    {"ACL": "authenticated-read"},
    {"GrantRead": f'uri="{ALL_USERS}"'},
    {"GrantWriteACP": f'id="{OTHER_ACCOUNT_ID}", uri="{AUTHENTICATED_USERS}"'},
]


@pytest.mark.parametrize("kwargs", PUBLIC_ACL_HEADERS)
def test_public_acl_refused_under_block_public_acls(
    s3: Any, call_of: CallOf, kwargs: dict[str, str]
) -> None:
    _bucket(s3, "ObjectWriter", {"BlockPublicAcls": True})
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, **kwargs))
    refused = behaviour.refusal(call)
    assert refused is not None
    assert (refused.status, refused.code) == (403, "AccessDenied")


@pytest.mark.parametrize("group", [ALL_USERS, AUTHENTICATED_USERS])
def test_public_acl_body_refused_under_block_public_acls(
    s3: Any, call_of: CallOf, group: str
) -> None:
    owner = _bucket(s3, "ObjectWriter", {"BlockPublicAcls": True})
    body = _acl_body(owner, {"Type": "Group", "URI": group})
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=body))
    assert _code(call) == "AccessDenied"


def test_public_acl_allowed_once_block_public_acls_is_off(s3: Any, call_of: CallOf) -> None:
    _bucket(s3, "ObjectWriter", {"BlockPublicAcls": False, "BlockPublicPolicy": True})
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, ACL="public-read"))
    assert behaviour.refusal(call) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ACL": "log-delivery-write"},
        {"GrantRead": f'uri="{LOG_DELIVERY}"'},
        {"GrantFullControl": f'id="{OTHER_ACCOUNT_ID}"'},
    ],
)
def test_non_public_acl_allowed_with_object_writer_under_bpa(
    s3: Any, call_of: CallOf, kwargs: dict[str, str]
) -> None:
    _bucket(s3, "ObjectWriter", ALL_BLOCKED)
    call = call_of(lambda client: client.put_bucket_acl(Bucket=BUCKET, **kwargs))
    assert behaviour.refusal(call) is None


def _policy_call(call_of: CallOf, *statements: dict[str, Any]) -> ConfigurationCall:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return call_of(lambda client: client.put_bucket_policy(Bucket=BUCKET, Policy=document))


@pytest.mark.parametrize(
    "principal",
    ["*", {"AWS": "*"}, {"AWS": ["*"]}, {"AWS": ["arn:aws:iam::111122223333:root", "*"]}],
)
def test_public_policy_refused_under_block_public_policy(
    s3: Any, call_of: CallOf, principal: Any
) -> None:
    _bucket(s3, "BucketOwnerEnforced", {"BlockPublicPolicy": True})
    call = _policy_call(call_of, dict(PUBLIC_READ_STATEMENT, Principal=principal))
    refused = behaviour.refusal(call)
    assert refused is not None
    assert (refused.status, refused.code) == (403, "AccessDenied")


@pytest.mark.parametrize(
    "condition",
    [
        {"Bool": {"aws:SecureTransport": "true"}},
        {"StringLike": {"aws:SourceVpce": "vpce-*"}},
        {"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}},
    ],
    ids=["secure-transport-only", "wildcard-vpce", "broad-source-ip"],
)
def test_policy_with_non_restricting_condition_refused(
    s3: Any, call_of: CallOf, condition: dict[str, Any]
) -> None:
    # S3 calls these public: the condition does not pin who may call to fixed values.
    _bucket(s3, "BucketOwnerEnforced", {"BlockPublicPolicy": True})
    refused = behaviour.refusal(
        _policy_call(call_of, dict(PUBLIC_READ_STATEMENT, Condition=condition))
    )
    assert refused is not None
    assert (refused.status, refused.code) == (403, "AccessDenied")


@pytest.mark.parametrize(
    "statement",
    [
        dict(PUBLIC_READ_STATEMENT, Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}),
        dict(PUBLIC_READ_STATEMENT, Principal={"AWS": "arn:aws:iam::111122223333:root"}),
        dict(PUBLIC_READ_STATEMENT, Effect="Deny"),
        dict(PUBLIC_READ_STATEMENT, Principal={"Service": "cloudfront.amazonaws.com"}),
    ],
    ids=["condition", "specific-principal", "deny", "service-principal"],
)
def test_non_public_policy_allowed_under_block_public_policy(
    s3: Any, call_of: CallOf, statement: dict[str, Any]
) -> None:
    _bucket(s3, "BucketOwnerEnforced", ALL_BLOCKED)
    assert behaviour.refusal(_policy_call(call_of, statement)) is None


def test_public_policy_allowed_once_block_public_policy_is_off(s3: Any, call_of: CallOf) -> None:
    _bucket(s3, "BucketOwnerEnforced", {"BlockPublicAcls": True, "BlockPublicPolicy": False})
    assert behaviour.refusal(_policy_call(call_of, PUBLIC_READ_STATEMENT)) is None


# -- access points -------------------------------------------------------------------------------

ACCOUNT = "123456789012"
ACCESS_POINT = "shared"
ALL_OFF = dict.fromkeys(ALL_BLOCKED, False)


def _access_point(s3: Any, block: dict[str, bool] | None) -> None:
    """An access point on BUCKET; `block` None leaves S3's default (all four settings on)."""
    s3.create_bucket(Bucket=BUCKET)
    s3control = boto3.session.Session().client("s3control", region_name=REGION)
    extra = {} if block is None else {"PublicAccessBlockConfiguration": block}
    s3control.create_access_point(AccountId=ACCOUNT, Name=ACCESS_POINT, Bucket=BUCKET, **extra)


@pytest.fixture
def access_point_policy_call(
    capture: RequestCapture,
) -> Callable[[dict[str, Any]], ConfigurationCall]:
    def identified(statement: dict[str, Any]) -> ConfigurationCall:
        client = capture.client("s3control", signing_region=REGION)
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        call = capture.identified(
            lambda: client.put_access_point_policy(
                AccountId=ACCOUNT, Name=ACCESS_POINT, Policy=document
            )
        )
        assert call is not None
        return call

    return identified


PUBLIC_ACCESS_POINT_STATEMENT = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{ACCESS_POINT}/object/*",
}


@pytest.mark.parametrize("block", [None, {**ALL_OFF, "BlockPublicPolicy": True}])
def test_public_access_point_policy_refused_under_its_block_public_policy(
    s3: Any, access_point_policy_call: Any, block: dict[str, bool] | None
) -> None:
    _access_point(s3, block)
    refused = behaviour.refusal(access_point_policy_call(PUBLIC_ACCESS_POINT_STATEMENT))
    assert refused is not None
    assert (refused.status, refused.code) == (403, "AccessDenied")


def test_public_access_point_policy_allowed_once_block_public_policy_is_off(
    s3: Any, access_point_policy_call: Any
) -> None:
    _access_point(s3, ALL_OFF)
    assert behaviour.refusal(access_point_policy_call(PUBLIC_ACCESS_POINT_STATEMENT)) is None


def test_non_public_access_point_policy_allowed(s3: Any, access_point_policy_call: Any) -> None:
    _access_point(s3, None)
    statement = dict(
        PUBLIC_ACCESS_POINT_STATEMENT, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    )
    assert behaviour.refusal(access_point_policy_call(statement)) is None


def test_policy_of_a_missing_access_point_is_left_to_s3(
    aws: None, access_point_policy_call: Any
) -> None:
    assert behaviour.refusal(access_point_policy_call(PUBLIC_ACCESS_POINT_STATEMENT)) is None


# -- CreateBucket and missing buckets -----------------------------------------------------------


def test_create_bucket_with_public_acl_and_default_ownership_refused(
    s3: Any, call_of: CallOf
) -> None:
    call = call_of(lambda client: client.create_bucket(Bucket="new-bucket", ACL="public-read"))
    refused = behaviour.refusal(call)
    assert refused is not None
    assert (refused.status, refused.code) == (400, "InvalidBucketAclWithObjectOwnership")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ACL": "public-read", "ObjectOwnership": "ObjectWriter"},
        {"ACL": "authenticated-read", "ObjectOwnership": "BucketOwnerPreferred"},
        {"GrantRead": f'uri="{ALL_USERS}"', "ObjectOwnership": "ObjectWriter"},
    ],
)
def test_create_bucket_with_public_acl_refused_whatever_the_ownership(
    s3: Any, call_of: CallOf, kwargs: dict[str, str]
) -> None:
    # A new bucket has Block Public Access on: S3 documents that a public ACL at creation fails.
    call = call_of(lambda client: client.create_bucket(Bucket="new-bucket", **kwargs))
    refused = behaviour.refusal(call)
    assert refused is not None
    assert (refused.status, refused.code) == (400, "InvalidBucketAclWithBlockPublicAccessError")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ACL": "log-delivery-write", "ObjectOwnership": "ObjectWriter"},
        {"GrantFullControl": f'id="{OTHER_ACCOUNT_ID}"', "ObjectOwnership": "ObjectWriter"},
        {"ACL": "private"},
        {},
    ],
)
def test_create_bucket_allowed(s3: Any, call_of: CallOf, kwargs: dict[str, str]) -> None:
    call = call_of(lambda client: client.create_bucket(Bucket="new-bucket", **kwargs))
    assert behaviour.refusal(call) is None


def test_calls_on_a_missing_bucket_are_left_to_s3(s3: Any, call_of: CallOf) -> None:
    acl = call_of(lambda client: client.put_bucket_acl(Bucket="no-such-bucket", ACL="public-read"))
    assert behaviour.refusal(acl) is None


# -- defaults -----------------------------------------------------------------------------------


def test_new_bucket_defaults(s3: Any, call_of: CallOf) -> None:
    s3.create_bucket(Bucket=BUCKET)
    behaviour.new_bucket_defaults(call_of(lambda c: c.create_bucket(Bucket=BUCKET)), s3)
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == (
        ALL_BLOCKED
    )
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_new_bucket_defaults_keep_the_chosen_ownership(s3: Any, call_of: CallOf) -> None:
    s3.create_bucket(Bucket=BUCKET, ObjectOwnership="ObjectWriter")
    call = call_of(lambda c: c.create_bucket(Bucket=BUCKET, ObjectOwnership="ObjectWriter"))
    behaviour.new_bucket_defaults(call, s3)
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == (
        ALL_BLOCKED
    )


def test_new_bucket_defaults_apply_the_grants_asked_for(s3: Any, call_of: CallOf) -> None:
    # moto ignores grant headers on CreateBucket; S3 makes them the bucket's ACL.
    owner = _bucket(s3, "ObjectWriter")
    grants = {
        "GrantFullControl": f'id="{owner}"',
        "GrantWrite": f'uri="{LOG_DELIVERY}"',
        "GrantReadACP": f'uri="{LOG_DELIVERY}"',
    }
    call = call_of(
        lambda c: c.create_bucket(Bucket=BUCKET, ObjectOwnership="ObjectWriter", **grants)
    )
    behaviour.new_bucket_defaults(call, s3)
    acl = s3.get_bucket_acl(Bucket=BUCKET)["Grants"]
    assert {(g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in acl} == {
        (owner, "FULL_CONTROL"),
        (LOG_DELIVERY, "WRITE"),
        (LOG_DELIVERY, "READ_ACP"),
    }


def test_deleted_encryption_falls_back_to_sse_s3(s3: Any, call_of: CallOf) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.delete_bucket_encryption(Bucket=BUCKET)
    behaviour.encryption_falls_back(
        call_of(lambda c: c.delete_bucket_encryption(Bucket=BUCKET)), s3
    )
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


# -- moto's log target check ----------------------------------------------------------------------


def _log_target_with_policy(s3: Any, *statements: dict[str, Any]) -> None:
    s3.create_bucket(Bucket="log-target")
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    s3.put_bucket_policy(Bucket="log-target", Policy=json.dumps(policy))
    s3.create_bucket(Bucket=BUCKET)


DENY_WITHOUT_TLS = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::log-target", "arn:aws:s3:::log-target/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
LOGGING_SERVICE_WRITES = {
    "Effect": "Allow",
    "Principal": {"Service": "logging.s3.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::log-target/*",
}
LOGGING_TO_TARGET = {"LoggingEnabled": {"TargetBucket": "log-target", "TargetPrefix": "logs/"}}


@pytest.fixture
def log_target_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint's version of moto's check, for this test only."""
    moto_check = FakeBucket.__dict__["_log_permissions_enabled_policy"]
    monkeypatch.setattr(FakeBucket, "_log_permissions_enabled_policy", moto_check)
    behaviour.judge_log_targets_by_principal_objects()


def test_logging_to_a_target_whose_policy_also_denies_everyone_without_tls(
    s3: Any, log_target_check: None
) -> None:
    _log_target_with_policy(s3, DENY_WITHOUT_TLS, LOGGING_SERVICE_WRITES)

    s3.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=LOGGING_TO_TARGET)

    logging = s3.get_bucket_logging(Bucket=BUCKET)["LoggingEnabled"]
    assert logging["TargetBucket"] == "log-target"


def test_logging_to_a_target_whose_policy_lets_no_logging_service_write_is_refused(
    s3: Any, log_target_check: None
) -> None:
    _log_target_with_policy(s3, DENY_WITHOUT_TLS)

    with pytest.raises(ClientError) as refused:
        s3.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=LOGGING_TO_TARGET)

    assert refused.value.response["Error"]["Code"] == "InvalidTargetBucketForLogging"
