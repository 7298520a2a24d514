"""AWS clients and the error classification every control shares.

Clients use botocore's adaptive retry mode, so throttling (SlowDown, 503) is retried with
client-side rate limiting before anything reaches the engine. `AWS_ENDPOINT_URL` (read by
botocore itself) points every client at a local emulator.
"""

from __future__ import annotations

import copy
import datetime
import json
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # the boto3 stubs are a development tool: the layer does not ship them
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3control import S3ControlClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=10,
)

# What S3 answers about a subject deleted after the event, and what it was.
GONE_CODES = {"NoSuchBucket": "bucket", "NoSuchAccessPoint": "access point"}
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "AccessControlListNotSupported"}
)

# Refusals that name a setup problem (a log target in another region, or one S3 cannot write
# to): retrying cannot help, so they fail the outcome, and the notification says what to fix.
SETUP_ERROR_CODES = frozenset({"CrossLocationLoggingProhibited", "InvalidTargetBucketForLogging"})

# S3's refusals of the document a write sends (a policy it will not take, one too large, an ACL
# it cannot read): the same document would be refused again, so a retry cannot help either. The
# outcome fails with S3's reason and is notified; the event is not sent back to Lambda's retries.
REFUSED_DOCUMENT_CODES = frozenset(
    {
        "MalformedPolicy",
        "PolicyTooLarge",
        "InvalidPolicyDocument",
        "MalformedACLError",
        "MalformedXML",
        "InvalidArgument",
        "InvalidRequest",
        "EntityTooLarge",
        "MaxMessageLengthExceeded",
    }
)


def new_client(service: str, **options: Any) -> Any:
    """A boto3 client of its own session (sessions are not thread-safe)."""
    # Any service by name: the stubs type `Session.client` only for literal names.
    session: Any = boto3.session.Session()
    return session.client(service, **options)


# The client's type follows the service's name, as in the boto3 stubs' own `boto3.client`.
@overload
def client(service: Literal["cloudtrail"], region: str | None = None) -> CloudTrailClient: ...
@overload
def client(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBClient: ...
@overload
def client(service: Literal["kms"], region: str | None = None) -> KMSClient: ...
@overload
def client(service: Literal["lambda"], region: str | None = None) -> LambdaClient: ...
@overload
def client(service: Literal["organizations"], region: str | None = None) -> OrganizationsClient: ...
@overload
def client(service: Literal["s3"], region: str | None = None) -> S3Client: ...
@overload
def client(service: Literal["s3control"], region: str | None = None) -> S3ControlClient: ...
@overload
def client(service: Literal["securityhub"], region: str | None = None) -> Any: ...  # no stubs
@overload
def client(service: Literal["sns"], region: str | None = None) -> SNSClient: ...
@overload
def client(service: Literal["ssm"], region: str | None = None) -> SSMClient: ...
@overload
def client(service: Literal["sts"], region: str | None = None) -> STSClient: ...
def client(service: str, region: str | None = None) -> Any:
    """A cached boto3 client with adaptive retries."""
    # One cache key however the region is passed: client("sns") is client("sns", None).
    return _cached_client(service, region)


@cache
def _cached_client(service: str, region: str | None) -> Any:
    return new_client(service, region_name=region, config=RETRY_CONFIG)


class ReadOnce:
    """A client whose reads (`get_*`) are answered once per check; any write forgets them.

    Controls that look at the same surface (public-acl and object-ownership both read the ACL)
    then cost one read between them, and a re-read after a write still goes to S3.
    """

    def __init__(self, wrapped: Any, memo: dict[tuple[str, str], Any]) -> None:
        self._wrapped = wrapped
        self._memo = memo

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._wrapped, name)
        if not callable(attribute) or name in {"get_paginator", "get_waiter"}:
            return attribute
        if name.startswith("get_"):
            return lambda **kwargs: self._read(name, attribute, kwargs)
        if name.startswith(("put_", "delete_")):
            return lambda **kwargs: self._write(name, attribute, kwargs)
        return attribute

    def forget(self) -> None:
        """Send the next reads to S3 again (a re-read right before a write)."""
        self._memo.clear()

    def _read(self, name: str, call: Any, kwargs: dict[str, Any]) -> Any:
        key = (name, json.dumps(kwargs, sort_keys=True, default=str))
        if key not in self._memo:
            try:
                self._memo[key] = (True, call(**kwargs))
            except ClientError as error:
                self._memo[key] = (False, error)
        answered, value = self._memo[key]
        if not answered:
            raise value
        return copied(value)

    def _write(self, name: str, call: Any, kwargs: dict[str, Any]) -> Any:
        self._memo.clear()
        return call(**kwargs)


# The parameters that name what a configuration call is about; its read takes only these.
_SUBJECT_PARAMETERS = ("AccountId", "Bucket", "Name")
# Writes whose value is one parameter that the read answers unwrapped (GetBucketAcl answers
# Owner and Grants); the other reads answer the parameter itself (GetBucketPolicy: Policy).
_ANSWERED_UNWRAPPED = {
    "put_bucket_acl": "AccessControlPolicy",
    "put_bucket_logging": "BucketLoggingStatus",
    "put_bucket_versioning": "VersioningConfiguration",
}
# What S3 answers the read of a configuration just deleted.
_MISSING_AFTER_DELETE = {
    "delete_access_point_policy": "NoSuchAccessPointPolicy",
    "delete_bucket_ownership_controls": "OwnershipControlsNotFoundError",
    "delete_bucket_policy": "NoSuchBucketPolicy",
    "delete_public_access_block": "NoSuchPublicAccessBlockConfiguration",
}
# S3 encrypts every bucket: without a configuration of its own, a bucket has SSE-S3.
_S3_DEFAULT_ENCRYPTION = {
    "ServerSideEncryptionConfiguration": {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                "BucketKeyEnabled": False,
            }
        ]
    }
}


class PlannedWrites(ReadOnce):
    """A dry run's client: reads as `ReadOnce`; a write is not sent but becomes what the reads
    after it answer. The controls after it then judge the state as the fix would leave it (the
    ACL public-acl cleaned, which object-ownership needs), and the dry run shows the changes a
    real run makes, not what each control would do alone.
    """

    def _write(self, name: str, call: Any, kwargs: dict[str, Any]) -> Any:
        subject = {key: kwargs[key] for key in _SUBJECT_PARAMETERS if key in kwargs}
        read = "get_" + name.split("_", 1)[1]
        key = (read, json.dumps(subject, sort_keys=True, default=str))
        self._memo[key] = _answer_after(name, kwargs)
        return {}


def _answer_after(name: str, kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """What the read of the configuration that `name` writes answers after the write."""
    if name in _MISSING_AFTER_DELETE:
        code = _MISSING_AFTER_DELETE[name]
        return False, ClientError({"Error": {"Code": code, "Message": code}}, name)
    if name == "delete_bucket_encryption":
        return True, copied(_S3_DEFAULT_ENCRYPTION)
    values = {key: value for key, value in kwargs.items() if key not in _SUBJECT_PARAMETERS}
    values.pop("ExpectedBucketOwner", None)
    if name in _ANSWERED_UNWRAPPED:
        return True, copied(values[_ANSWERED_UNWRAPPED[name]])
    if not name.startswith("put_") or len(values) != 1:
        raise TypeError(f"a dry run cannot tell what {name} would change: {sorted(values)}")
    return True, copied(values)


# What botocore's parsed responses hold besides dicts and lists: values that cannot change.
IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None), datetime.datetime, Decimal})


def copied(value: Any) -> Any:
    """A deep copy of a parsed response, so that no reader changes what the next one reads.

    Dicts and lists are copied and immutable values shared; anything else goes to
    `copy.deepcopy`. A sweep reads every surface of thousands of buckets through `ReadOnce`,
    and this costs a fraction of `copy.deepcopy`'s time, which keeps a memo of every object.
    """
    kind = type(value)
    if kind is dict:
        return {key: copied(item) for key, item in value.items()}
    if kind is list:
        return [copied(item) for item in value]
    if kind in IMMUTABLE:
        return value
    return copy.deepcopy(value)


def reset_clients() -> None:
    """Forget cached clients (after the endpoint or credentials change)."""
    _cached_client.cache_clear()


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_gone(error: ClientError) -> bool:
    return error_code(error) in GONE_CODES


def is_access_denied(error: ClientError) -> bool:
    return error_code(error) in ACCESS_DENIED_CODES


def is_setup_error(error: ClientError) -> bool:
    return error_code(error) in SETUP_ERROR_CODES


def is_refused_document(error: ClientError) -> bool:
    """S3 refused what a write sent (not who sent it, not how often): see REFUSED_DOCUMENT_CODES."""
    operation = str(getattr(error, "operation_name", ""))
    return operation.startswith(("Put", "Delete")) and error_code(error) in REFUSED_DOCUMENT_CODES


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))
