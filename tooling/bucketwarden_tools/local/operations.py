"""Which S3 or S3 Control configuration call an HTTP request is, as CloudTrail would name it.

Only management calls that change configuration are named; object reads and writes, and every
Get/List/Head, return None (CloudTrail logs those as data events or read-only events, which the
service's rules never match).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import xmltodict

# Bucket sub-resource → (CloudTrail name of PUT, of DELETE).
_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None]] = {
    "acl": ("PutBucketAcl", None),
    "policy": ("PutBucketPolicy", "DeleteBucketPolicy"),
    "encryption": ("PutBucketEncryption", "DeleteBucketEncryption"),
    "versioning": ("PutBucketVersioning", None),
    "publicAccessBlock": ("PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"),
    "ownershipControls": ("PutBucketOwnershipControls", "DeleteBucketOwnershipControls"),
    "logging": ("PutBucketLogging", None),
    "tagging": ("PutBucketTagging", "DeleteBucketTagging"),
    "object-lock": ("PutObjectLockConfiguration", None),
    "website": ("PutBucketWebsite", "DeleteBucketWebsite"),
    "lifecycle": ("PutBucketLifecycle", "DeleteBucketLifecycle"),
    "cors": ("PutBucketCors", "DeleteBucketCors"),
    "replication": ("PutBucketReplication", "DeleteBucketReplication"),
    "notification": ("PutBucketNotification", None),
}
# Request headers CloudTrail copies into requestParameters.
_LOGGED_HEADERS = (
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-object-ownership",
    "x-amz-bucket-object-lock-enabled",
)
# Elements CloudTrail shows as JSON booleans, where the XML body has "true" or "false".
_BOOLEAN_ELEMENTS = frozenset(
    {
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
        "BucketKeyEnabled",
    }
)
_CONTROL_PREFIX = "/v20180820/"
_BUCKET_PATH = re.compile(r"/(?P<name>[^/]+)/?")
_ACCESS_POINT = re.compile(r"^/v20180820/accesspoint/(?P<name>[^/]+)(?P<policy>/policy)?$")
# The one configuration call sent with POST: Multi-Region Access Points are made asynchronously.
_CREATE_MULTI_REGION_ACCESS_POINT = "/v20180820/async-requests/mrap/create"


@dataclass(frozen=True)
class ConfigurationCall:
    event_name: str
    bucket: str | None
    request_parameters: dict[str, Any]
    body: bytes
    access_point: str | None = None  # the access point's name, for access point calls


def _header(environ: dict[str, Any], name: str) -> str | None:
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def _as_logged(path: Any, key: str, value: Any) -> tuple[str, Any]:
    """xmltodict postprocessor: the booleans CloudTrail logs as JSON booleans."""
    if key in _BOOLEAN_ELEMENTS and value in {"true", "false"}:
        return key, value == "true"
    return key, value


def _parsed_body(body: bytes, content_is_policy: bool) -> dict[str, Any]:
    if not body.strip():
        return {}
    text = body.decode("utf-8", "replace")
    if content_is_policy:
        try:
            return {"bucketPolicy": json.loads(text)}
        except json.JSONDecodeError:
            return {"bucketPolicy": text}
    try:
        # CloudTrail names XML attributes plainly ("xmlns", "xsi:type"), not with xmltodict's "@".
        return dict(xmltodict.parse(text, attr_prefix="", postprocessor=_as_logged))
    except Exception:  # a body S3 would refuse: log it as text, as CloudTrail does
        return {"body": text}


def _bucket_call(
    method: str, bucket: str, query: dict[str, list[str]], environ: dict[str, Any], body: bytes
) -> ConfigurationCall | None:
    subresources = [key for key in query if key in _BUCKET_SUBRESOURCES]
    if subresources:
        put_name, delete_name = _BUCKET_SUBRESOURCES[subresources[0]]
        name = put_name if method == "PUT" else delete_name if method == "DELETE" else None
    else:
        name = {"PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method)
        name = None if query else name
    if name is None:
        return None
    host = environ.get("HTTP_HOST", "")
    parameters: dict[str, Any] = {"bucketName": bucket, "Host": host}
    parameters.update({key: [""] for key in subresources})
    for header in _LOGGED_HEADERS:
        value = _header(environ, header)
        if value is not None:
            parameters[header] = [value]
    parameters.update(_parsed_body(body, content_is_policy=name == "PutBucketPolicy"))
    return ConfigurationCall(name, bucket, parameters, body)


def _control_call(
    method: str, path: str, environ: dict[str, Any], body: bytes
) -> ConfigurationCall | None:
    """An S3 Control call, with the requestParameters CloudTrail logs for it.

    CloudTrail logs the request body (an access point policy stays a JSON string inside its
    XML element), the host, and for access points their name and the x-amz-account-id header.
    The account itself is the record's recipientAccountId.
    """
    parameters: dict[str, Any] = {"Host": environ.get("HTTP_HOST", "")}
    if path == "/v20180820/configuration/publicAccessBlock":
        names = {"PUT": "PutAccountPublicAccessBlock", "DELETE": "DeleteAccountPublicAccessBlock"}
        name = names.get(method)
        parameters.update(_parsed_body(body, content_is_policy=False))
        return ConfigurationCall(name, None, parameters, body) if name else None
    if path == _CREATE_MULTI_REGION_ACCESS_POINT:
        if method != "POST":
            return None
        parameters.update(_parsed_body(body, content_is_policy=False))
        parameters["x-amz-account-id"] = _header(environ, "x-amz-account-id") or ""
        return ConfigurationCall("CreateMultiRegionAccessPoint", None, parameters, body)
    match = _ACCESS_POINT.match(path)
    if not match:
        return None
    if match["policy"]:
        name = {"PUT": "PutAccessPointPolicy", "DELETE": "DeleteAccessPointPolicy"}.get(method)
    else:
        name = {"PUT": "CreateAccessPoint", "DELETE": "DeleteAccessPoint"}.get(method)
    if name is None:
        return None
    parameters.update(_parsed_body(body, content_is_policy=False))
    access_point = unquote(match["name"])
    parameters["name"] = access_point
    parameters["x-amz-account-id"] = _header(environ, "x-amz-account-id") or ""
    return ConfigurationCall(name, None, parameters, body, access_point)


def _virtual_host_bucket(environ: dict[str, Any]) -> str | None:
    """The bucket of a virtual-hosted request ("<bucket>.localhost:4566"), or None."""
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
    bucket = host.removesuffix(".localhost")
    return bucket if bucket and bucket != host else None


def _bucket_of(environ: dict[str, Any]) -> str | None:
    """The bucket a bucket-level request addresses; None for objects and the service root."""
    path = environ.get("PATH_INFO", "/")
    virtual = _virtual_host_bucket(environ)
    if virtual is not None:
        return virtual if path in {"", "/"} else None
    # "/bucket" or "/bucket/" only: "/bucket//" is the object whose key is "/", not the bucket.
    match = _BUCKET_PATH.fullmatch(path)
    return unquote(match["name"]) if match else None


def is_configuration_request(environ: dict[str, Any]) -> bool:
    """Whether a request may be a configuration call, judged without reading its body."""
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "/")
    if method == "POST" and path == _CREATE_MULTI_REGION_ACCESS_POINT:
        return _is_s3(environ)
    if method not in {"PUT", "DELETE"} or not _is_s3(environ):
        return False
    return path.startswith(_CONTROL_PREFIX) or _bucket_of(environ) is not None


def identify(environ: dict[str, Any], body: bytes) -> ConfigurationCall | None:
    """The configuration call a request to the endpoint makes, or None for anything else."""
    if not is_configuration_request(environ):
        return None
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "/")
    if path.startswith(_CONTROL_PREFIX):
        return _control_call(method, path, environ, body)
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return _bucket_call(method, str(_bucket_of(environ)), query, environ, body)


def _is_s3(environ: dict[str, Any]) -> bool:
    # SigV4 names the signing service in the credential scope: ".../<region>/s3/aws4_request";
    # a directory bucket's bucket-level calls are signed for s3express.
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    return any(f"/{service}/aws4_request" in authorization for service in ("s3", "s3express"))


def access_key(environ: dict[str, Any]) -> str | None:
    """The access key id that signed the request."""
    match = re.search(r"Credential=([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def region(environ: dict[str, Any]) -> str | None:
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None
