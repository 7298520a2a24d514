"""operations.identify names requests as CloudTrail would, judged on requests botocore really sends.

A tiny WSGI server records each request and answers 200 with an empty body, so every test below
makes a real boto3 call and hands identify() the exact environ and body that reached the server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from werkzeug.serving import WSGIRequestHandler, make_server

from bucketwarden_tools.local.cloudtrail import cloudtrail_record, identity_of
from bucketwarden_tools.local.operations import ConfigurationCall, access_key, identify, region
from tests.conftest import EVENTS

ACCOUNT = "123456789012"
ACCESS_KEY = "AKIACAPTURED"
SIGNING_REGION = "eu-west-1"
BUCKET = "drifting-bucket"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
OWNER_ID = "a" * 64

Environ = dict[str, Any]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """One line per request would drown the test output."""


class RequestCapture:
    """Records every request it receives and answers 200 with an empty body."""

    def __init__(self) -> None:
        self.requests: list[tuple[Environ, bytes]] = []
        # One botocore session: each new one reloads the service models, which is slow.
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        # Strings only: the WSGI input and error streams do not outlive the request.
        kept = {key: value for key, value in environ.items() if isinstance(value, str)}
        with self._lock:
            self.requests.append((kept, body))
        start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", "0")])
        return [b""]

    def request_of(self, action: Callable[[], Any]) -> tuple[Environ, bytes]:
        """The one request that `action` (a boto3 call) sent."""
        with self._lock:
            self.requests.clear()
        action()
        with self._lock:
            assert len(self.requests) == 1, [env["PATH_INFO"] for env, _ in self.requests]
            return self.requests[0]

    def identified(self, action: Callable[[], Any]) -> ConfigurationCall | None:
        return identify(*self.request_of(action))

    def client(
        self, service: str, key: str = ACCESS_KEY, signing_region: str = SIGNING_REGION
    ) -> Any:
        if (service, key, signing_region) in self._clients:
            return self._clients[service, key, signing_region]
        made = self._session.client(
            service,
            endpoint_url=self.url,
            region_name=signing_region,
            aws_access_key_id=key,
            aws_secret_access_key="secret",
            config=Config(retries={"total_max_attempts": 1}),
        )
        self._clients[service, key, signing_region] = made
        return made


@pytest.fixture(scope="module")
def capture() -> Iterator[RequestCapture]:
    server = RequestCapture()
    yield server
    server.close()


@pytest.fixture
def s3(capture: RequestCapture) -> Any:
    return capture.client("s3")


@pytest.fixture
def s3control(capture: RequestCapture) -> Any:
    return capture.client("s3control")


def _name(capture: RequestCapture, action: Callable[[], Any]) -> str | None:
    call = capture.identified(action)
    return call.event_name if call else None


# -- bucket configuration calls -----------------------------------------------------------------


def test_create_and_delete_bucket(capture: RequestCapture, s3: Any) -> None:
    created = capture.identified(
        lambda: s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": SIGNING_REGION}
        )
    )
    assert created is not None
    assert (created.event_name, created.bucket) == ("CreateBucket", BUCKET)
    configuration = created.request_parameters["CreateBucketConfiguration"]
    assert configuration["LocationConstraint"] == SIGNING_REGION
    assert _name(capture, lambda: s3.delete_bucket(Bucket=BUCKET)) == "DeleteBucket"


def test_create_bucket_logs_acl_and_ownership_headers(capture: RequestCapture, s3: Any) -> None:
    call = capture.identified(
        lambda: s3.create_bucket(Bucket=BUCKET, ACL="public-read", ObjectOwnership="ObjectWriter")
    )
    assert call is not None
    assert call.request_parameters["x-amz-acl"] == ["public-read"]
    assert call.request_parameters["x-amz-object-ownership"] == ["ObjectWriter"]


@pytest.mark.parametrize(
    ("kwargs", "logged"),
    [
        ({"ACL": "public-read"}, {"x-amz-acl": ["public-read"]}),
        (
            {"GrantRead": f'uri="{ALL_USERS}"'},
            {"x-amz-grant-read": [f'uri="{ALL_USERS}"']},
        ),
        (
            {"GrantFullControl": f'id="{OWNER_ID}"', "GrantWriteACP": f'uri="{ALL_USERS}"'},
            {
                "x-amz-grant-full-control": [f'id="{OWNER_ID}"'],
                "x-amz-grant-write-acp": [f'uri="{ALL_USERS}"'],
            },
        ),
    ],
)
def test_put_bucket_acl_by_header(
    capture: RequestCapture, s3: Any, kwargs: dict[str, str], logged: dict[str, list[str]]
) -> None:
    call = capture.identified(lambda: s3.put_bucket_acl(Bucket=BUCKET, **kwargs))
    assert call is not None
    assert call.event_name == "PutBucketAcl"
    assert call.request_parameters["acl"] == [""]
    for header, value in logged.items():
        assert call.request_parameters[header] == value


def test_put_bucket_acl_by_body_parses_the_access_control_policy(
    capture: RequestCapture, s3: Any
) -> None:
    policy = {
        "Owner": {"ID": OWNER_ID},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": OWNER_ID}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
        ],
    }
    call = capture.identified(lambda: s3.put_bucket_acl(Bucket=BUCKET, AccessControlPolicy=policy))
    assert call is not None
    assert call.event_name == "PutBucketAcl"
    logged = call.request_parameters["AccessControlPolicy"]
    assert logged["Owner"]["ID"] == OWNER_ID
    grants = logged["AccessControlList"]["Grant"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL", "READ"]
    assert grants[1]["Grantee"]["URI"] == ALL_USERS
    # As in CloudTrail's records: XML attributes keep their plain names.
    assert grants[0]["Grantee"]["xsi:type"] == "CanonicalUser"
    assert logged["xmlns"] == "http://s3.amazonaws.com/doc/2006-03-01/"


def test_put_bucket_policy_logs_the_policy_as_a_json_object(
    capture: RequestCapture, s3: Any
) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }
        ],
    }
    call = capture.identified(
        lambda: s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(document))
    )
    assert call is not None
    assert call.event_name == "PutBucketPolicy"
    assert call.request_parameters["bucketPolicy"] == document
    assert call.request_parameters["policy"] == [""]


def test_put_bucket_versioning_logs_the_configuration(capture: RequestCapture, s3: Any) -> None:
    call = capture.identified(
        lambda: s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"}
        )
    )
    assert call is not None
    assert (call.event_name, call.bucket) == ("PutBucketVersioning", BUCKET)
    parameters = call.request_parameters
    assert parameters["bucketName"] == BUCKET
    assert parameters["versioning"] == [""]
    assert parameters["VersioningConfiguration"]["Status"] == "Suspended"
    assert parameters["Host"] == urlsplit(capture.url).netloc


def test_put_bucket_encryption_logs_the_rule(capture: RequestCapture, s3: Any) -> None:
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
    call = capture.identified(
        lambda: s3.put_bucket_encryption(
            Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [rule]}
        )
    )
    assert call is not None
    assert call.event_name == "PutBucketEncryption"
    logged = call.request_parameters["ServerSideEncryptionConfiguration"]["Rule"]
    assert logged["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_put_public_access_block_is_put_bucket_public_access_block(
    capture: RequestCapture, s3: Any
) -> None:
    call = capture.identified(
        lambda: s3.put_public_access_block(
            Bucket=BUCKET,
            PublicAccessBlockConfiguration={"BlockPublicAcls": False, "BlockPublicPolicy": True},
        )
    )
    assert call is not None
    assert call.event_name == "PutBucketPublicAccessBlock"
    logged = call.request_parameters["PublicAccessBlockConfiguration"]
    # As CloudTrail logs them: JSON booleans, not the XML's text.
    assert (logged["BlockPublicAcls"], logged["BlockPublicPolicy"]) == (False, True)


BUCKET_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("DeleteBucketPolicy", lambda s3: s3.delete_bucket_policy(Bucket=BUCKET)),
    ("DeleteBucketEncryption", lambda s3: s3.delete_bucket_encryption(Bucket=BUCKET)),
    (
        "DeleteBucketPublicAccessBlock",
        lambda s3: s3.delete_public_access_block(Bucket=BUCKET),
    ),
    (
        "PutBucketOwnershipControls",
        lambda s3: s3.put_bucket_ownership_controls(
            Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        ),
    ),
    (
        "DeleteBucketOwnershipControls",
        lambda s3: s3.delete_bucket_ownership_controls(Bucket=BUCKET),
    ),
    (
        "PutBucketLogging",
        lambda s3: s3.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus={}),
    ),
    (
        "PutBucketTagging",
        lambda s3: s3.put_bucket_tagging(
            Bucket=BUCKET, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]}
        ),
    ),
    (
        "PutObjectLockConfiguration",
        lambda s3: s3.put_object_lock_configuration(
            Bucket=BUCKET, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
        ),
    ),
]


@pytest.mark.parametrize(("event_name", "action"), BUCKET_CALLS, ids=[n for n, _ in BUCKET_CALLS])
def test_bucket_configuration_calls_are_named(
    capture: RequestCapture, s3: Any, event_name: str, action: Callable[[Any], Any]
) -> None:
    call = capture.identified(lambda: action(s3))
    assert call is not None
    assert (call.event_name, call.bucket) == (event_name, BUCKET)
    assert call.request_parameters["bucketName"] == BUCKET


NOT_CONFIGURATION: list[tuple[str, Callable[[Any], Any]]] = [
    ("GetBucketAcl", lambda s3: s3.get_bucket_acl(Bucket=BUCKET)),
    ("ListBuckets", lambda s3: s3.list_buckets()),
    ("PutObject", lambda s3: s3.put_object(Bucket=BUCKET, Key="report.csv", Body=b"a,b")),
    ("GetObject", lambda s3: s3.get_object(Bucket=BUCKET, Key="report.csv")),
    ("DeleteObject", lambda s3: s3.delete_object(Bucket=BUCKET, Key="report.csv")),
    ("HeadBucket", lambda s3: s3.head_bucket(Bucket=BUCKET)),
    ("PutObjectAcl", lambda s3: s3.put_object_acl(Bucket=BUCKET, Key="k", ACL="public-read")),
    # A key that is only "/" puts the path at "/bucket//": an object, not the bucket.
    ("PutObject of key /", lambda s3: s3.put_object(Bucket=BUCKET, Key="/", Body=b"x")),
    ("DeleteObject of key /", lambda s3: s3.delete_object(Bucket=BUCKET, Key="/")),
]


@pytest.mark.parametrize(
    ("operation", "action"), NOT_CONFIGURATION, ids=[n for n, _ in NOT_CONFIGURATION]
)
def test_reads_and_object_calls_are_not_configuration_calls(
    capture: RequestCapture, s3: Any, operation: str, action: Callable[[Any], Any]
) -> None:
    assert capture.identified(lambda: action(s3)) is None, operation


# -- S3 Control ---------------------------------------------------------------------------------


def _sample(event_name: str) -> dict[str, Any]:
    """The CloudTrail record of events/<event_name>.json."""
    return dict(json.loads((EVENTS / f"{event_name}.json").read_text())["detail"])


def _sample_parameter(event_name: str, *path: str) -> Any:
    """A request parameter of the sample, as the API takes it (no XML namespace)."""
    found: Any = _sample(event_name)["requestParameters"]
    for key in path:
        found = found[key]
    return {k: v for k, v in found.items() if k != "xmlns"} if isinstance(found, dict) else found


MRAP_REQUEST = ("CreateMultiRegionAccessPoint", "CreateMultiRegionAccessPointRequest")
# Each call made with the values of its sample, so the logged parameters can equal the sample's.
S3_CONTROL_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    (
        "PutAccountPublicAccessBlock",
        lambda s3control: s3control.put_public_access_block(
            AccountId=ACCOUNT,
            PublicAccessBlockConfiguration=_sample_parameter(
                "PutAccountPublicAccessBlock", "PublicAccessBlockConfiguration"
            ),
        ),
    ),
    (
        "DeleteAccountPublicAccessBlock",
        lambda s3control: s3control.delete_public_access_block(AccountId=ACCOUNT),
    ),
    (
        "CreateAccessPoint",
        lambda s3control: s3control.create_access_point(
            AccountId=ACCOUNT,
            Name=_sample_parameter("CreateAccessPoint", "name"),
            Bucket=_sample_parameter("CreateAccessPoint", "CreateAccessPointRequest", "Bucket"),
            PublicAccessBlockConfiguration=_sample_parameter(
                "CreateAccessPoint", "CreateAccessPointRequest", "PublicAccessBlockConfiguration"
            ),
        ),
    ),
    (
        "CreateMultiRegionAccessPoint",
        lambda s3control: s3control.create_multi_region_access_point(
            AccountId=ACCOUNT,
            ClientToken=_sample_parameter(*MRAP_REQUEST, "ClientToken"),
            Details={
                "Name": _sample_parameter(*MRAP_REQUEST, "Details", "Name"),
                "PublicAccessBlock": _sample_parameter(
                    *MRAP_REQUEST, "Details", "PublicAccessBlock"
                ),
                "Regions": [_sample_parameter(*MRAP_REQUEST, "Details", "Regions", "Region")],
            },
        ),
    ),
    (
        "PutAccessPointPolicy",
        lambda s3control: s3control.put_access_point_policy(
            AccountId=ACCOUNT,
            Name=_sample_parameter("PutAccessPointPolicy", "name"),
            Policy=_sample_parameter(
                "PutAccessPointPolicy", "PutAccessPointPolicyRequest", "Policy"
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    ("event_name", "action"), S3_CONTROL_CALLS, ids=[n for n, _ in S3_CONTROL_CALLS]
)
def test_s3_control_records_have_the_shape_of_the_samples(
    capture: RequestCapture, event_name: str, action: Callable[[Any], Any]
) -> None:
    # The samples are in us-east-1: sign for it, so the access point ARNs can be equal too.
    s3control = capture.client("s3control", signing_region="us-east-1")
    environ, body = capture.request_of(lambda: action(s3control))
    call = identify(environ, body)
    assert call is not None
    record = cloudtrail_record(call, identity_of(ACCESS_KEY), environ, "us-east-1")
    sample = _sample(event_name)

    assert (call.event_name, call.bucket) == (event_name, None)
    for field in ("eventSource", "eventName", "recipientAccountId", "resources"):
        assert record.get(field) == sample.get(field), field
    # Everything CloudTrail logs of the request but the host, which here is the endpoint.
    logged = {k: v for k, v in record["requestParameters"].items() if k != "Host"}
    assert logged == {k: v for k, v in sample["requestParameters"].items() if k != "Host"}
    assert record["requestParameters"]["Host"] == urlsplit(capture.url).netloc


def test_other_s3_control_calls(capture: RequestCapture, s3control: Any) -> None:
    deleted = capture.identified(
        lambda: s3control.delete_access_point(AccountId=ACCOUNT, Name="shared")
    )
    assert deleted is not None
    assert (deleted.event_name, deleted.access_point) == ("DeleteAccessPoint", "shared")
    assert deleted.request_parameters["x-amz-account-id"] == ACCOUNT
    policy_deleted = capture.identified(
        lambda: s3control.delete_access_point_policy(AccountId=ACCOUNT, Name="shared")
    )
    assert policy_deleted is not None
    assert policy_deleted.event_name == "DeleteAccessPointPolicy"
    for read in (
        lambda: s3control.get_public_access_block(AccountId=ACCOUNT),
        lambda: s3control.get_access_point(AccountId=ACCOUNT, Name="shared"),
        lambda: s3control.get_access_point_policy(AccountId=ACCOUNT, Name="shared"),
    ):
        assert capture.identified(read) is None


# -- who signed, and where ----------------------------------------------------------------------


def test_access_key_and_region_come_from_the_signature(capture: RequestCapture) -> None:
    s3 = capture.client("s3", key="AKIAMALLORY", signing_region="ap-southeast-2")
    environ, _ = capture.request_of(
        lambda: s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": []})
    )
    assert access_key(environ) == "AKIAMALLORY"
    assert region(environ) == "ap-southeast-2"


def test_unsigned_or_non_s3_requests_are_not_named(capture: RequestCapture, s3: Any) -> None:
    environ, body = capture.request_of(
        lambda: s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": []})
    )
    unsigned = {key: value for key, value in environ.items() if key != "HTTP_AUTHORIZATION"}
    assert access_key(unsigned) is None
    assert region(unsigned) is None
    assert identify(unsigned, body) is None
    # The same request signed for another service is not an S3 call.
    other = dict(environ, HTTP_AUTHORIZATION=environ["HTTP_AUTHORIZATION"].replace("/s3/", "/sqs/"))
    assert identify(other, body) is None


def test_virtual_hosted_requests_name_the_bucket_from_the_host(
    capture: RequestCapture, s3: Any
) -> None:
    environ, body = capture.request_of(
        lambda: s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"}
        )
    )
    # What Terraform or an SDK without path-style addressing sends to "<bucket>.localhost".
    port = environ["HTTP_HOST"].rsplit(":", 1)[1]
    virtual = dict(environ, HTTP_HOST=f"{BUCKET}.localhost:{port}", PATH_INFO="/")
    call = identify(virtual, body)
    assert call is not None
    assert (call.event_name, call.bucket) == ("PutBucketVersioning", BUCKET)
    # On a virtual host, a path below the root is an object, not the bucket.
    assert identify(dict(virtual, PATH_INFO="/some-key"), body) is None
